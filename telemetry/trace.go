package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Start sets up tracing from the OTEL_* variables that getenv reads, and
// returns nil and a shutdown that does nothing when they leave it off.
//
// Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set, or OTEL_TRACES_EXPORTER is "otlp"
// (then to the exporter's default endpoint), unless OTEL_SDK_DISABLED is
// "true" or OTEL_TRACES_EXPORTER is "none". Spans go to the endpoint over
// OTLP: HTTP with protobuf by default, gRPC when
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL is
// "grpc". The rest the OpenTelemetry SDK reads from the process environment
// itself: the service name and resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES), the sampler (OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG), the batching (OTEL_BSP_*) and the exporter's
// headers, timeout and TLS (OTEL_EXPORTER_OTLP_*).
//
// When tracing is on, Start also makes the provider and the W3C trace
// context and baggage propagators OpenTelemetry's globals, so that code
// using otel.Tracer (a handler's own calls) joins the same traces. Call
// shutdown before the process exits: it sends the spans not yet sent.
func Start(ctx context.Context, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, off, nil
	}
	endpoint, generic := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), false
	if endpoint == "" {
		endpoint, generic = getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), true
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return nil, off, nil
	case "":
		if endpoint == "" {
			return nil, off, nil
		}
	case "otlp":
	default:
		return nil, off, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Baton exports traces with otlp only (or none, to turn them off)", exp)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exporter sdktrace.SpanExporter
		err      error
	)
	switch protocol {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		if endpoint != "" {
			if generic {
				// The generic endpoint is the collector's base URL; the
				// signal's path is appended, as the specification says.
				endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		}
		exporter, err = otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exporter, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, off, fmt.Errorf("OTLP protocol %q: want http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, off, fmt.Errorf("OTLP trace exporter to %q: %w (check OTEL_EXPORTER_OTLP_ENDPOINT)", endpoint, err)
	}
	// The default resource is the SDK's, with OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES; the default sampler reads OTEL_TRACES_SAMPLER.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp, tp.Shutdown, nil
}
