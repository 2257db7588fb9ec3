package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler is a slog.Handler that adds trace_id and span_id, at the top
// level, to every record logged with a context carrying a valid span, and
// passes the records on to another handler. A handler of events or a step
// that logs with its ctx (slog.InfoContext(ctx, ...)) thereby writes lines
// that can be found from its trace, and the other way round.
type LogHandler struct {
	next slog.Handler
	// groups are the groups opened by WithGroup, each with the attributes
	// added inside it; they are applied in Handle, so that the ids stay
	// at the top level.
	groups []group
}

type group struct {
	name  string
	attrs []slog.Attr
}

// The attributes LogHandler adds.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// NewLogHandler returns a LogHandler passing records on to next.
func NewLogHandler(next slog.Handler) *LogHandler {
	return &LogHandler{next: next}
}

// Enabled reports whether the handler it wraps handles level.
func (h *LogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the ids of ctx's span, if it carries a valid one, and passes
// r on.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() && len(h.groups) == 0 {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if sc.IsValid() {
		out.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	var attrs []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		attrs = []slog.Attr{slog.GroupAttrs(g.name, append(g.attrs[:len(g.attrs):len(g.attrs)], attrs...)...)}
	}
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a LogHandler whose records carry attrs too.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.groups) == 0 {
		return &LogHandler{next: h.next.WithAttrs(attrs)}
	}
	groups := append([]group(nil), h.groups...)
	last := &groups[len(groups)-1]
	last.attrs = append(last.attrs[:len(last.attrs):len(last.attrs)], attrs...)
	return &LogHandler{next: h.next, groups: groups}
}

// WithGroup returns a LogHandler whose records' attributes, but for the
// ids, are in the group name.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := append(h.groups[:len(h.groups):len(h.groups)], group{name: name})
	return &LogHandler{next: h.next, groups: groups}
}
