package flow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A run is one trace: the run's span under the caller's, a span per step
// and compensation under it, each service's process span under its step's,
// the coordinator's span for each reply under the service's, the HTTP
// step's request carrying the trace on, and the run's end.
func TestRunIsOneTrace(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var mu sync.Mutex
	var gotHeader string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHeader = r.Header.Get("traceparent")
		mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	cmds := &recorder{}
	f := flow.Flow{Name: "book", Version: 1, Steps: []flow.Step{
		{Name: "check", HTTP: &flow.HTTPCall{Method: "GET", URL: srv.URL}},
		{Name: "a", Send: send("a.do.v1"), Compensate: &flow.Step{Name: "undo", Send: send("a.undo.v1")}},
		{Name: "b", Send: send("b.do.v1", "b.refused.v1")},
	}}
	work := service("work",
		handler("a.do.v1", answer(cmds, "a", "a.done.v1", nil)),
		handler("a.undo.v1", answer(cmds, "undo", "a.undone.v1", nil)),
		handler("b.do.v1", answer(cmds, "b", "b.refused.v1", nil)))
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{work}, tracer: tp})

	ctx, caller := tp.Tracer("test").Start(context.Background(), "book a trip")
	run, _, err := h.co.StartRun(ctx, flow.StartRequest{Flow: "book", Key: "trip-7"})
	caller.End()
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus(run.ID, store.RunFailed)

	var spans []sdktrace.ReadOnlySpan
	eventually(t, "the run's end span", func() bool {
		spans = rec.Ended()
		// A handler's span ends when its delivery is settled, which may be
		// after the coordinator applied the reply the handler sent.
		return find(spans, "run book failed") != nil && find(spans, "process a.undone.v1") != nil &&
			find(spans, "process a.undo.v1") != nil
	})
	for _, s := range spans {
		if s.SpanContext().TraceID() != caller.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, not the caller's %s", s.Name(), s.SpanContext().TraceID(), caller.SpanContext().TraceID())
		}
	}
	runSpan := must(t, spans, "run book")
	parent(t, runSpan, caller.SpanContext())
	parent(t, must(t, spans, "run book failed"), runSpan.SpanContext())
	check := must(t, spans, "step check")
	parent(t, check, runSpan.SpanContext())
	mu.Lock()
	if id := event.TraceID(gotHeader); id != caller.SpanContext().TraceID().String() {
		t.Errorf("the HTTP step's request carried traceparent %q, want one of trace %s", gotHeader, caller.SpanContext().TraceID())
	}
	mu.Unlock()
	for _, c := range []struct{ step, cmd, reply, status string }{
		{"step a", "a.do.v1", "a.done.v1", "completed"},
		{"step b", "b.do.v1", "b.refused.v1", "failed"},
		{"compensate a/compensate/undo", "a.undo.v1", "a.undone.v1", "completed"},
	} {
		step := must(t, spans, c.step)
		parent(t, step, runSpan.SpanContext())
		if step.SpanKind() != trace.SpanKindProducer || attr(step, "messaging.destination.name") != c.cmd {
			t.Errorf("%s: kind %v destination %q, want a producer span sending %s", c.step, step.SpanKind(), attr(step, "messaging.destination.name"), c.cmd)
		}
		process := must(t, spans, "process "+c.cmd)
		parent(t, process, step.SpanContext())
		reply := must(t, spans, "process "+c.reply)
		parent(t, reply, process.SpanContext())
		if got := attr(reply, "baton.status"); got != c.status {
			t.Errorf("%s: the coordinator's span says the step is %q, want %q", c.reply, got, c.status)
		}
		if got := attr(reply, "messaging.consumer.group.name"); got != flow.DefaultGroup {
			t.Errorf("%s: consumer group %q, want %q", c.reply, got, flow.DefaultGroup)
		}
	}

	hist, err := h.b.History(context.Background(), "trip-7")
	if err != nil {
		t.Fatal(err)
	}
	ended := false
	for _, e := range hist {
		if e.TraceID != caller.SpanContext().TraceID().String() {
			t.Errorf("journal entry %s %s names trace %q, want %s", e.Outcome, e.EventType, e.TraceID, caller.SpanContext().TraceID())
		}
		ended = ended || e.Outcome == store.RunEnded(store.RunFailed)
	}
	if !ended {
		t.Errorf("no run-failed entry in the journal: %v", hist)
	}
}

// Without a tracer provider a run keeps its caller's trace context, and
// its commands carry it on.
func TestRunKeepsTheCallersTraceWithoutTracing(t *testing.T) {
	t.Parallel()
	cmds := &recorder{}
	var mu sync.Mutex
	var got []string
	work := service("work", handler("a.do.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		mu.Lock()
		got = append(got, e.TraceParent)
		mu.Unlock()
		return answer(cmds, "a", "a.done.v1", nil)(ctx, e)
	}))
	h := launch(t, setup{flows: []flow.Flow{{Name: "one", Version: 1, Steps: []flow.Step{{Name: "a", Send: send("a.do.v1")}}}},
		services: []baton.Service{work}})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc, err := remote(tp)
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := h.co.StartRun(trace.ContextWithRemoteSpanContext(context.Background(), sc), flow.StartRequest{Flow: "one", Key: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	if run.TraceParent != tp {
		t.Errorf("run's traceparent %q, want the caller's %q", run.TraceParent, tp)
	}
	h.waitStatus(run.ID, store.RunCompleted)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != tp {
		t.Errorf("the step's command carried %q, want [%s]", got, tp)
	}
}

func remote(tp string) (trace.SpanContext, error) {
	parts := strings.Split(tp, "-")
	tid, err := trace.TraceIDFromHex(parts[1])
	if err != nil {
		return trace.SpanContext{}, err
	}
	sid, err := trace.SpanIDFromHex(parts[2])
	if err != nil {
		return trace.SpanContext{}, err
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}), nil
}

func find(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func must(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans named %q: %d, want 1; all: %q", name, len(found), names)
	}
	return found[0]
}

func parent(t *testing.T, s sdktrace.ReadOnlySpan, want trace.SpanContext) {
	t.Helper()
	if s.Parent().SpanID() != want.SpanID() {
		t.Errorf("%s: parent %s, want %s", s.Name(), s.Parent().SpanID(), want.SpanID())
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
