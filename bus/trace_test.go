package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// One order's spans: the publish, each group's process span (a child of
// the span that sent what it handles), the handler's context, the send span
// of its outputs, a retried attempt and a dead letter, and the trace id in
// the journal.
func TestTracesFollowAnOrder(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, m mode) {
		b := openMemory(t)
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		var mu sync.Mutex
		handlerSpans := map[string]trace.SpanContext{} // by event type
		seen := func(ctx context.Context, e baton.Event) {
			mu.Lock()
			defer mu.Unlock()
			handlerSpans[e.Type] = trace.SpanContextFromContext(ctx)
		}
		payment := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			seen(ctx, e)
			out, err := baton.NewEvent("payment.processed.v1", "", map[string]int{"amount": 3})
			return []baton.Event{out}, err
		}
		var stockCalls sync.Map
		stock := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			if _, again := stockCalls.LoadOrStore(e.ID, true); !again {
				return nil, errors.New("warehouse busy")
			}
			seen(ctx, e)
			return nil, nil
		}
		audit := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			return nil, baton.Permanent(errors.New("audit refuses"))
		}
		rt := run(t, b, bus.Config{Transport: m.transport(b), TracerProvider: tp},
			baton.Service{Name: "payment", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: payment}}},
			baton.Service{Name: "stock", Retry: fastRetry(3), Handlers: []baton.Handler{{Type: "payment.processed.v1", Func: stock}}},
			baton.Service{Name: "audit", Handlers: []baton.Handler{{Type: "payment.processed.v1", Func: audit}}})

		// The order is placed inside a span of the caller's: the trace
		// starts there.
		ctx, root := tp.Tracer("test").Start(t.Context(), "place order")
		if err := rt.Publish(ctx, orderEvent(t, "trace-1", 1)); err != nil {
			t.Fatal(err)
		}
		root.End()

		// place order, send, process (payment), send (its output),
		// process x2 (stock: retried, ok), process (audit: dead).
		var spans []sdktrace.ReadOnlySpan
		eventually(t, "7 ended spans", func() (bool, string) {
			spans = rec.Ended()
			return len(spans) >= 7, describeSpans(spans)
		})
		t.Log(describeSpans(spans))
		for _, s := range spans {
			if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
				t.Errorf("span %s is in trace %s, not the order's %s", s.Name(), s.SpanContext().TraceID(), root.SpanContext().TraceID())
			}
		}
		send := only(t, spans, "send order.placed.v1", "")
		checkSpan(t, send, trace.SpanKindProducer, root.SpanContext(), map[string]string{
			"messaging.system": "baton", "messaging.destination.name": "order.placed.v1", "messaging.message.id": "trace-1",
			"messaging.operation.type": "send", "baton.correlation_id": "trace-1"})
		pay := only(t, spans, "process order.placed.v1", "payment")
		checkSpan(t, pay, trace.SpanKindConsumer, send.SpanContext(), map[string]string{
			"messaging.system": "baton", "messaging.destination.name": "order.placed.v1", "messaging.consumer.group.name": "payment",
			"messaging.message.id": "trace-1", "messaging.operation.type": "process", "cloudevents.event_type": "order.placed.v1",
			"baton.attempt": "1", "baton.outcome": "ok"})
		mu.Lock()
		if got := handlerSpans["order.placed.v1"]; got.SpanID() != pay.SpanContext().SpanID() {
			t.Errorf("the payment handler's context holds span %s, want its process span %s", got.SpanID(), pay.SpanContext().SpanID())
		}
		mu.Unlock()
		out := only(t, spans, "send payment.processed.v1", "")
		checkSpan(t, out, trace.SpanKindProducer, pay.SpanContext(), map[string]string{"messaging.destination.name": "payment.processed.v1"})

		var stockSpans []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() == "process payment.processed.v1" && attr(s, "messaging.consumer.group.name") == "stock" {
				stockSpans = append(stockSpans, s)
			}
		}
		if len(stockSpans) != 2 {
			t.Fatalf("stock process spans: got %d, want 2 (a retried attempt and the one that succeeded)", len(stockSpans))
		}
		for _, s := range stockSpans {
			want := map[string]string{"1": "retried", "2": "ok"}[attr(s, "baton.attempt")]
			checkSpan(t, s, trace.SpanKindConsumer, pay.SpanContext(), map[string]string{"baton.outcome": want})
			if want == "retried" && (s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "warehouse busy")) {
				t.Errorf("retried attempt's status: %v %q, want an error naming the handler's", s.Status().Code, s.Status().Description)
			}
		}
		dead := only(t, spans, "process payment.processed.v1", "audit")
		checkSpan(t, dead, trace.SpanKindConsumer, pay.SpanContext(), map[string]string{
			"baton.outcome": "dead-lettered", "baton.dead_letter.reason": "permanent"})
		if dead.Status().Code != codes.Error || !strings.Contains(dead.Status().Description, "audit refuses") {
			t.Errorf("dead-lettered span's status: %v %q, want an error with the reason", dead.Status().Code, dead.Status().Description)
		}

		want := root.SpanContext().TraceID().String()
		eventually(t, "every journal entry of the order names its trace", func() (bool, string) {
			h := history(t, b, "trace-1")
			var bad []string
			for _, e := range h {
				if e.TraceID != want {
					bad = append(bad, fmt.Sprintf("%s %s %s: %q", e.Outcome, e.EventType, e.Group, e.TraceID))
				}
			}
			return len(h) >= 6 && len(bad) == 0, fmt.Sprintf("%d entries, without trace %s: %q", len(h), want, bad)
		})
	})
}

// An event published with no trace context and outside any span starts a
// trace of its own, and its id names it in the journal.
func TestPublishStartsATrace(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	r := newRecorder()
	rt := run(t, b, bus.Config{TracerProvider: tp},
		baton.Service{Name: "stock", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: r.handle}}})
	publish(t, rt, orderEvent(t, "root-1", 1), orderEvent(t, "root-2", 2))
	r.wait(t, "root-1", "root-2")
	traces := map[string]trace.TraceID{}
	for _, id := range []string{"root-1", "root-2"} {
		e, _ := r.last(id)
		sc := trace.SpanContextFromContext(bus.TraceContext(context.Background(), e))
		if !sc.IsValid() {
			t.Fatalf("%s arrived with traceparent %q: want the context of its send span", id, e.TraceParent)
		}
		traces[id] = sc.TraceID()
	}
	if traces["root-1"] == traces["root-2"] {
		t.Errorf("two orders published in one batch share trace %s: each should start its own", traces["root-1"])
	}
	for _, s := range rec.Ended() {
		if s.Name() == "send order.placed.v1" && s.Parent().IsValid() {
			t.Errorf("send span of a publish with no context has parent %s, want none", s.Parent().SpanID())
		}
	}
	for _, id := range []string{"root-1", "root-2"} {
		for _, e := range history(t, b, id) {
			if e.Outcome == store.Published && e.TraceID != traces[id].String() {
				t.Errorf("%s's published entry names trace %q, want %s", id, e.TraceID, traces[id])
			}
		}
	}
}

func only(t *testing.T, spans []sdktrace.ReadOnlySpan, name, group string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name && (group == "" || attr(s, "messaging.consumer.group.name") == group) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("spans named %q of group %q: got %d, want 1; spans: %s", name, group, len(found), describeSpans(spans))
	}
	return found[0]
}

func checkSpan(t *testing.T, s sdktrace.ReadOnlySpan, kind trace.SpanKind, parent trace.SpanContext, attrs map[string]string) {
	t.Helper()
	if s.SpanKind() != kind {
		t.Errorf("%s: kind %v, want %v", s.Name(), s.SpanKind(), kind)
	}
	if s.Parent().SpanID() != parent.SpanID() {
		t.Errorf("%s: parent %s, want %s", s.Name(), s.Parent().SpanID(), parent.SpanID())
	}
	for k, want := range attrs {
		if got := attr(s, k); got != want {
			t.Errorf("%s: attribute %s = %q, want %q", s.Name(), k, got, want)
		}
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if kv.Key == attribute.Key(key) {
			return kv.Value.Emit()
		}
	}
	return ""
}

func describeSpans(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s [%s] span %s parent %s outcome %q", s.Name(), attr(s, "messaging.consumer.group.name"),
			s.SpanContext().SpanID(), s.Parent().SpanID(), attr(s, "baton.outcome"))
	}
	return b.String()
}
