package bus

import (
	"context"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// MessagingSystem is implemented by transports to name themselves in the
// spans of the messages they carry, as OpenTelemetry's messaging.system
// ("rabbitmq", "nats"); the runtime names the others "baton".
type MessagingSystem interface {
	MessagingSystem() string
}

// Instrumentation is the name of the runtime's tracer.
const Instrumentation = "github.com/batonhq/baton/bus"

// tracer makes the runtime's spans, after the OpenTelemetry messaging
// semantic conventions (attributes are set only on the spans a sampler
// records): a send span per event Publish publishes and per
// batch of a handler's outputs, and a process span per delivery handled.
// A nil *tracer (no Config.TracerProvider) makes none and costs nothing:
// events then keep the trace context they came with, and their outputs
// take it on unchanged.
type tracer struct {
	t      trace.Tracer
	system attribute.KeyValue
}

func newTracer(tp trace.TracerProvider, t Transport) *tracer {
	if tp == nil {
		return nil
	}
	sys := "baton"
	if ms, ok := t.(MessagingSystem); ok {
		sys = ms.MessagingSystem()
	}
	return &tracer{t: tp.Tracer(Instrumentation), system: attribute.String("messaging.system", sys)}
}

// Span attributes of Baton's own, beside the conventions' messaging.* and
// cloudevents.*.
const (
	attrCorrelation = attribute.Key("baton.correlation_id")
	attrAttempt     = attribute.Key("baton.attempt")
	attrOutcome     = attribute.Key("baton.outcome") // ok, retried, dead-lettered, duplicate
	attrDeadReason  = attribute.Key("baton.dead_letter.reason")
)

// w3c carries trace context in an event's traceparent and tracestate, the
// attributes of CloudEvents' distributed tracing extension.
var w3c = propagation.TraceContext{}

// carrier holds an event's traceparent and tracestate for a propagator.
// It copies them rather than point into the event, so that an event the
// runtime handles does not escape to the heap for it, tracing on or off.
type carrier struct{ parent, state string }

func carrierOf(e *baton.Event) *carrier { return &carrier{e.TraceParent, e.TraceState} }

func (c *carrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.parent = value
	case "tracestate":
		c.state = value
	}
}

func (c *carrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// inject sets e's trace context to ctx's span context, if valid.
func inject(ctx context.Context, e *baton.Event) {
	c := carrierOf(e)
	w3c.Inject(ctx, c)
	e.TraceParent, e.TraceState = c.parent, c.state
}

// extract returns ctx with e's trace context as the remote parent.
func extract(ctx context.Context, e *baton.Event) context.Context {
	return w3c.Extract(ctx, carrierOf(e))
}

// send starts the span of publishing e, a child of the trace context e
// carries or else of ctx's span (a new trace when neither has one), and
// gives e its context. Without tracing, e that carries no context takes
// ctx's, if it has one (an API caller's).
func (t *tracer) send(ctx context.Context, e *baton.Event) trace.Span {
	if t == nil {
		if e.TraceParent == "" && trace.SpanContextFromContext(ctx).IsValid() {
			inject(ctx, e)
		}
		return nil
	}
	parent := ctx
	if e.TraceParent != "" {
		parent = extract(ctx, e)
	}
	_, span := t.t.Start(parent, "send "+e.Type, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			t.system,
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.destination.name", e.Type),
			attribute.String("messaging.message.id", e.ID),
			attribute.String("cloudevents.event_type", e.Type),
			attrCorrelation.String(e.CorrelationID))
	}
	inject(trace.ContextWithSpan(ctx, span), e)
	return span
}

// process starts the span of group handling d, a child of the trace
// context d carries (a new trace when it carries none), and returns ctx
// with it: the handler's own calls join the trace.
func (t *tracer) process(ctx context.Context, group string, d *Delivery) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	ctx, span := t.t.Start(extract(ctx, &d.Event), "process "+d.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			t.system,
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", d.Type),
			attribute.String("messaging.consumer.group.name", group),
			attribute.String("messaging.message.id", d.ID),
			attribute.String("cloudevents.event_type", d.Type),
			attrCorrelation.String(d.CorrelationID),
			attrAttempt.Int(d.Attempt))
	}
	return ctx, span
}

// outputs starts the span of sending a handled delivery's outputs, a child
// of its process span; nil when there are none to send.
func (t *tracer) outputs(process trace.Span, msgs []Message) trace.Span {
	if t == nil || process == nil || len(msgs) == 0 {
		return nil
	}
	if !process.IsRecording() {
		// Not sampled: its outputs carry its context on, not a span.
		return nil
	}
	name, dest := "send", ""
	if typ := msgs[0].Type; allOfType(msgs, typ) {
		name, dest = "send "+typ, typ
	}
	attrs := []attribute.KeyValue{t.system,
		attribute.String("messaging.operation.type", "send"),
		attribute.String("messaging.operation.name", "send")}
	if dest != "" {
		attrs = append(attrs, attribute.String("messaging.destination.name", dest))
	}
	if len(msgs) > 1 {
		attrs = append(attrs, attribute.Int("messaging.batch.message_count", len(msgs)))
	} else {
		attrs = append(attrs, attribute.String("messaging.message.id", msgs[0].ID))
	}
	_, span := t.t.Start(trace.ContextWithSpan(context.Background(), process), name,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	return span
}

func allOfType(msgs []Message, typ string) bool {
	for _, m := range msgs {
		if m.Type != typ {
			return false
		}
	}
	return true
}

// stamp gives an output the trace context of the process span in ctx: the
// output's consumer is then the child of its cause. Without one (tracing
// off) the output keeps the context of its input, set by the caller.
func (t *tracer) stamp(ctx context.Context, e *baton.Event) {
	if t != nil {
		inject(ctx, e)
	}
}

// journalTrace gives the entries of a handled delivery that name no trace
// the trace id of its process span (nil without tracing), or of the
// context it carried.
func journalTrace(process trace.Span, in *baton.Event, entries []store.Entry) {
	id := ""
	if process != nil && process.SpanContext().IsValid() {
		id = process.SpanContext().TraceID().String()
	} else if id = event.TraceID(in.TraceParent); id == "" {
		return
	}
	for i := range entries {
		if entries[i].TraceID == "" {
			entries[i].TraceID = id
		}
	}
}

// endSpans ends a delivery's spans with the verdict, once it is settled
// (err nil) or could not be.
func endSpans(process, send trace.Span, c *Commit, v verdict, err error) {
	if process == nil {
		return
	}
	if send != nil {
		if err != nil {
			send.SetStatus(codes.Error, err.Error())
		}
		send.End()
	}
	switch {
	case err != nil:
		process.SetStatus(codes.Error, "settle failed: "+err.Error())
	case v.duplicate:
		process.SetAttributes(attrOutcome.String("duplicate"))
	case v.dead != "":
		process.SetAttributes(attrOutcome.String("dead-lettered"), attrDeadReason.String(string(v.dead)))
		if c.Dead != nil {
			process.SetStatus(codes.Error, c.Dead.Reason)
		}
	case v.retried:
		process.SetAttributes(attrOutcome.String("retried"))
		if len(c.Journal) > 0 {
			process.SetStatus(codes.Error, c.Journal[0].Error)
		}
	default:
		process.SetAttributes(attrOutcome.String("ok"))
	}
	process.End()
}

// TraceContext returns ctx with the trace context e carries (its
// traceparent and tracestate) as the remote parent of the spans started
// from it; ctx as it is when e carries none.
func TraceContext(ctx context.Context, e baton.Event) context.Context {
	if e.TraceParent == "" {
		return ctx
	}
	return extract(ctx, &e)
}

// SetTraceContext sets e's traceparent and tracestate to the span context
// of ctx, when it has a valid one.
func SetTraceContext(ctx context.Context, e *baton.Event) {
	inject(ctx, e)
}
