// Package telemetry sets up what Baton's processes export about themselves
// from the environment, as the OpenTelemetry specification's OTEL_*
// variables say: Start turns tracing on when an OTLP endpoint is given and
// returns the TracerProvider that bus.Config, flow.Config and runner.Config
// take, or nil, which costs nothing, when none is.
//
// The runtime's and the coordinator's spans follow the OpenTelemetry
// messaging semantic conventions; docs/observability.md lists them and how
// to send them to a collector such as Jaeger or Tempo.
package telemetry
