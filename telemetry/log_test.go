package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/batonhq/baton/telemetry"
)

// spanContext returns ctx carrying a span context made by hand, as a
// tracer would put in a handler's ctx.
func spanContext(t testing.TB, ctx context.Context) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(ctx, sc), sc
}

// lines decodes every JSON line of b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogHandlerAddsTheSpanIDs(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&b, nil)))
	ctx, sc := spanContext(t, context.Background())

	log.InfoContext(ctx, "charged", "order", "o-1")
	log.InfoContext(context.Background(), "no span")
	log.Info("no context")
	// A span context that is not valid (no trace id) adds nothing.
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), "invalid span")

	got := lines(t, &b)
	if len(got) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(got), b.String())
	}
	if got[0][telemetry.TraceIDKey] != sc.TraceID().String() || got[0][telemetry.SpanIDKey] != sc.SpanID().String() || got[0]["order"] != "o-1" {
		t.Errorf("line in a span: %v; want trace_id %s, span_id %s and order o-1", got[0], sc.TraceID(), sc.SpanID())
	}
	for _, l := range got[1:] {
		if _, ok := l[telemetry.TraceIDKey]; ok {
			t.Errorf("line without a valid span has a trace id: %v", l)
		}
		if _, ok := l[telemetry.SpanIDKey]; ok {
			t.Errorf("line without a valid span has a span id: %v", l)
		}
	}
}

// The ids stay at the top level whatever groups the logger has open, and
// the attributes keep their groups.
func TestLogHandlerKeepsGroups(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&b, nil))).
		With("service", "payment").WithGroup("event").With("type", "order.placed.v1").WithGroup("step").With("n", 2)
	ctx, sc := spanContext(t, context.Background())

	log.InfoContext(ctx, "handled", "attempt", 1)
	log.InfoContext(context.Background(), "handled", "attempt", 1)

	got := lines(t, &b)
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(got), b.String())
	}
	want := `{"attempt":1,"n":2}`
	for i, l := range got {
		ev, _ := l["event"].(map[string]any)
		step, _ := ev["step"].(map[string]any)
		js, _ := json.Marshal(step)
		if l["service"] != "payment" || ev["type"] != "order.placed.v1" || string(js) != want {
			t.Errorf("line %d lost its attributes or their groups: %v", i, l)
		}
	}
	if got[0][telemetry.TraceIDKey] != sc.TraceID().String() || got[0][telemetry.SpanIDKey] != sc.SpanID().String() {
		t.Errorf("ids not at the top level: %s", b.String())
	}
	if _, ok := got[1][telemetry.TraceIDKey]; ok {
		t.Errorf("line without a span has a trace id: %v", got[1])
	}
}

// The level of the handler it wraps decides.
func TestLogHandlerLevel(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := slog.New(telemetry.NewLogHandler(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, _ := spanContext(t, context.Background())
	log.InfoContext(ctx, "quiet")
	log.WarnContext(ctx, "loud")
	if out := b.String(); strings.Contains(out, "quiet") || !strings.Contains(out, "msg=loud trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7") {
		t.Errorf("wrote %q; want only the warning, with its ids", out)
	}
}

func ExampleNewLogHandler() {
	// No time, so that the output is the same each run.
	noTime := func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})))

	// A handler's ctx carries its span (here one made by hand).
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))

	log.InfoContext(ctx, "card charged", "order", "o-000017")
	// Output:
	// {"level":"INFO","msg":"card charged","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","order":"o-000017"}
}
