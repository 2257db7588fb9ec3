package rabbitbus

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
)

// A plain AMQP client's traceparent is honoured: the process span of the
// event it publishes is a child of the client's span, in its trace, and
// the handler's context holds it.
func TestPlainClientTraceParentIsHonoured(t *testing.T) {
	b := open(t, Config{})
	st, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	got := make(chan trace.SpanContext, 1)
	rt, err := bus.New(bus.Config{Transport: b, Store: st, TracerProvider: tp, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = rt.Register(baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1",
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			got <- trace.SpanContextFromContext(ctx)
			return nil, nil
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(context.Background())

	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ch := plainChannel(t)
	err = ch.Publish(b.cfg.Namespace, "order.placed.v1", false, false, amqp.Publishing{
		ContentType: "application/json",
		Headers: amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": "plain-traced", "cloudEvents_source": "shop",
			"cloudEvents_type": "order.placed.v1", "cloudEvents_traceparent": "00-" + traceID + "-" + spanID + "-01",
			"cloudEvents_tracestate": "shop=1"},
		Body: []byte(`{"order":"ORDER-9"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	var sc trace.SpanContext
	select {
	case sc = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler was not called within 30s")
	}
	if sc.TraceID().String() != traceID || sc.TraceState().Get("shop") != "1" {
		t.Errorf("the handler's span is in trace %s with state %q, want the client's %s with shop=1", sc.TraceID(), sc.TraceState(), traceID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(rec.Ended()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("ended spans: %d, want the process span only", len(spans))
	}
	s := spans[0]
	if s.Name() != "process order.placed.v1" || s.Parent().SpanID().String() != spanID || !s.Parent().IsRemote() ||
		s.SpanContext().SpanID() != sc.SpanID() {
		t.Errorf("span %q with parent %s (remote %v): want the process span the handler saw, a child of the client's %s",
			s.Name(), s.Parent().SpanID(), s.Parent().IsRemote(), spanID)
	}
	for _, kv := range s.Attributes() {
		if kv.Key == attribute.Key("messaging.system") && kv.Value.AsString() != "rabbitmq" {
			t.Errorf("messaging.system = %q, want rabbitmq", kv.Value.AsString())
		}
	}
}
