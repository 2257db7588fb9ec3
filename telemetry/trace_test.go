package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/telemetry"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestStartIsOffUnlessAnEndpointIsGiven(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"nothing set":   {},
		"sdk disabled":  {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
		"exporter none": {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
		"service only":  {"OTEL_SERVICE_NAME": "shop"},
	} {
		tp, shutdown, err := telemetry.Start(t.Context(), env(vars))
		if err != nil || tp != nil {
			t.Errorf("%s: provider %v, error %v; want none and no error", name, tp, err)
		}
		if err := shutdown(t.Context()); err != nil {
			t.Errorf("%s: shutdown: %v", name, err)
		}
	}
}

func TestStartRefusesWhatItCannotExport(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		vars map[string]string
		want string
	}{
		"zipkin":    {map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "otlp only"},
		"http/json": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "want http/protobuf or grpc"},
	} {
		if _, _, err := telemetry.Start(t.Context(), env(c.vars)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT, spans go over OTLP/HTTP to its
// /v1/traces, sent at the latest by shutdown.
func TestStartExportsToTheEndpoint(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			got.Add(1)
		}
	}))
	defer srv.Close()
	tp, shutdown, err := telemetry.Start(t.Context(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}))
	if err != nil || tp == nil {
		t.Fatalf("provider %v, error %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "one")
	span.End()
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got.Load() == 0 {
		t.Error("no OTLP request reached /v1/traces")
	}
}
