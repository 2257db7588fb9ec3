package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/telemetry"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A caller's W3C trace context is taken inward: the event it publishes and
// the run it starts join its trace, which the journal names.
func TestAPIJoinsTheCallersTrace(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tp := "00-" + traceID + "-00f067aa0ba902b7-01"

	o := orders.NewOrder(77)
	r := s.do(t, "POST", "/v1/events", map[string]any{"type": orders.TypeOrderPlaced, "subject": o.OrderID, "data": o},
		"traceparent", tp)
	if r.status != 202 {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	var h api.History
	s.do(t, "GET", "/v1/history/"+o.OrderID, nil).decode(t, &h)
	if len(h.Entries) == 0 || h.Entries[0].Outcome != store.Published || h.Entries[0].TraceID != traceID {
		t.Errorf("the published event's entry: %+v, want trace %s", h.Entries, traceID)
	}

	r = s.do(t, "POST", "/v1/runs", orderStart(78), "traceparent", tp)
	var started api.Started
	r.decode(t, &started)
	if r.status != 202 || started.TraceParent != tp {
		t.Errorf("started run: %d, traceparent %q, want the caller's %q", r.status, started.TraceParent, tp)
	}
}

// With a tracer provider each request is a server span: the child of the
// caller's context when it sends one, else the root of a new trace, which
// the event the request publishes joins; the access log's line names it.
func TestAPIStartsTheTrace(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	var logs lockedBuffer
	h, err := api.New(api.Config{Store: b, Transport: b, Publisher: rt,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
		Logger:         slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	publish := func(subject, traceparent string) {
		t.Helper()
		body := `{"type":"order.placed.v1","subject":"` + subject + `","data":{}}`
		req, _ := http.NewRequest("POST", srv.URL+"/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("publish %s: %d", subject, resp.StatusCode)
		}
	}
	serverSpan := func(n int) sdktrace.ReadOnlySpan {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(rec.Ended()) < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		ended := rec.Ended()
		if len(ended) != n {
			t.Fatalf("%d spans ended, want %d", len(ended), n)
		}
		s := ended[n-1]
		if s.SpanKind() != trace.SpanKindServer || s.Name() != "POST" {
			t.Fatalf("span %q of kind %v, want a server span POST", s.Name(), s.SpanKind())
		}
		return s
	}
	journaled := func(subject string) string {
		t.Helper()
		h, err := b.History(context.Background(), subject)
		if err != nil || len(h) != 1 {
			t.Fatalf("history of %s: %v %+v", subject, err, h)
		}
		return h[0].TraceID
	}

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	publish("o-1", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	s := serverSpan(1)
	if s.SpanContext().TraceID().String() != callerTrace || s.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("server span in trace %s under %s, want the caller's trace %s under its span 00f067aa0ba902b7",
			s.SpanContext().TraceID(), s.Parent().SpanID(), callerTrace)
	}
	if got := journaled("o-1"); got != callerTrace {
		t.Errorf("the event joined trace %q, want the caller's %s", got, callerTrace)
	}

	publish("o-2", "")
	s = serverSpan(2)
	if s.Parent().IsValid() {
		t.Errorf("a request without a trace context made a span under %s, want a root", s.Parent().SpanID())
	}
	started := s.SpanContext().TraceID().String()
	if got := journaled("o-2"); got != started {
		t.Errorf("the event joined trace %q, want the one the API started, %s", got, started)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"trace_id":"`+started+`"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"trace_id":"`+started+`"`) {
		t.Errorf("no access log line names trace %s:\n%s", started, logs.String())
	}
}
