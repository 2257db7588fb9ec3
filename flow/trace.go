package flow

import (
	"context"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation is the name of the coordinator's tracer.
const Instrumentation = "github.com/batonhq/baton/flow"

// tracer makes the coordinator's spans. A run lives across many
// transitions, and across coordinators, so its spans are the moments it is
// moved, each ended as the transition that made it is saved, joined into
// one trace by the context the run keeps (store.Run.TraceParent):
//
//   - "run FLOW", started by StartRun (a child of the caller's span, such
//     as the API request's), whose context the run keeps;
//   - "step PATH" ("compensate PATH" for a compensation), a child of the
//     run's span, for each attempt a transition sends: the command carries
//     its context, so the service's process span is its child; for an HTTP
//     step it covers the call, which carries it on (otelhttp);
//   - "process TYPE", a child of the reply's context (the service's span),
//     for each reply the coordinator applies, with the step's status after;
//   - "run FLOW STATUS", a child of the run's span, when the run ends.
//
// A nil *tracer (no Config.TracerProvider) makes none: a run then keeps
// the trace context StartRun's caller had, if any, and its commands carry
// it on.
type tracer struct {
	t      trace.Tracer
	tp     trace.TracerProvider
	system attribute.KeyValue
}

func newTracer(tp trace.TracerProvider, t Transport) *tracer {
	if tp == nil {
		return nil
	}
	sys := "baton"
	if ms, ok := t.(bus.MessagingSystem); ok {
		sys = ms.MessagingSystem()
	}
	return &tracer{t: tp.Tracer(Instrumentation), tp: tp, system: attribute.String("messaging.system", sys)}
}

const (
	attrRun     = attribute.Key("baton.run.id")
	attrFlow    = attribute.Key("baton.flow.name")
	attrStep    = attribute.Key("baton.flow.step")
	attrAttempt = attribute.Key("baton.attempt")
	attrStatus  = attribute.Key("baton.status")
)

// runContext is ctx with the run's trace context as the remote parent.
func runContext(ctx context.Context, run *store.Run) context.Context {
	return bus.TraceContext(ctx, baton.Event{TraceParent: run.TraceParent, TraceState: run.TraceState})
}

// start starts the run's span, a child of ctx's (a new trace without
// one), and gives the run its context.
func (t *tracer) start(ctx context.Context, run *store.Run) trace.Span {
	var span trace.Span
	if t != nil {
		ctx, span = t.t.Start(ctx, "run "+run.Flow, trace.WithTimestamp(run.Created), trace.WithAttributes(
			attrRun.String(run.ID), attrFlow.String(run.Flow), attribute.Int("baton.flow.version", run.Version),
			attribute.String("baton.correlation_id", run.Key)))
	}
	var e baton.Event
	bus.SetTraceContext(ctx, &e)
	run.TraceParent, run.TraceState = e.TraceParent, e.TraceState
	return span
}

// step starts the span of a step's attempt that x sends as e, and gives e
// its context; without tracing, e carries the run's context on.
func (t *tracer) step(x *exec, path string, attempt int, e *baton.Event) {
	if t == nil {
		e.TraceParent, e.TraceState = x.run.TraceParent, x.run.TraceState
		return
	}
	ctx, span := t.t.Start(runContext(context.Background(), x.run), stepName(path), trace.WithTimestamp(x.now),
		trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			t.system, attrRun.String(x.run.ID), attrFlow.String(x.run.Flow), attrStep.String(path), attrAttempt.Int(attempt),
			attribute.String("messaging.operation.type", "send"), attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.destination.name", e.Type), attribute.String("messaging.message.id", e.ID))
	}
	bus.SetTraceContext(ctx, e)
	x.spans = append(x.spans, span)
}

func stepName(path string) string {
	if strings.Contains(path, "/compensate/") {
		return "compensate " + path
	}
	return "step " + path
}

// endSpans ends the spans of x's steps: once the transition is saved
// (err nil), or when it is not.
func (x *exec) endSpans(err error) {
	for _, s := range x.spans {
		if err != nil {
			s.SetStatus(codes.Error, "transition not saved: "+err.Error())
		}
		s.End()
	}
	x.spans = nil
}

// reply starts the span of applying d, a reply to step path of run runID.
func (t *tracer) reply(ctx context.Context, group string, d *bus.Delivery, runID, path string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	ctx, span := t.t.Start(bus.TraceContext(ctx, d.Event), "process "+d.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(t.system,
			attribute.String("messaging.operation.type", "process"), attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", d.Type), attribute.String("messaging.consumer.group.name", group),
			attribute.String("messaging.message.id", d.ID), attribute.String("cloudevents.event_type", d.Type),
			attrRun.String(runID), attrStep.String(path), attrAttempt.Int(d.Attempt))
	}
	return ctx, span
}

// replied ends a reply's span with the status of its step after it.
func replied(span trace.Span, run store.Run, path string, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	} else if st := run.Steps[path]; st != nil {
		span.SetAttributes(attrStatus.String(string(st.Status)))
		if st.Status == store.StepFailed {
			span.SetStatus(codes.Error, st.Error)
		}
	}
	span.End()
}

// ended records the end of run.
func (t *tracer) ended(run store.Run) {
	if t == nil {
		return
	}
	_, span := t.t.Start(runContext(context.Background(), &run), "run "+run.Flow+" "+string(run.Status),
		trace.WithAttributes(attrRun.String(run.ID), attrFlow.String(run.Flow), attrStatus.String(string(run.Status))))
	if run.Status != store.RunCompleted {
		span.SetStatus(codes.Error, run.Error)
	}
	span.End()
}

// call starts the span of an HTTP step's attempt; the request carries its
// context on (see transport).
func (t *tracer) call(runID string, c pendingCall) (context.Context, trace.Span) {
	ctx := bus.TraceContext(context.Background(), baton.Event{TraceParent: c.traceParent, TraceState: c.traceState})
	if t == nil {
		return ctx, nil
	}
	return t.t.Start(ctx, stepName(c.path), trace.WithAttributes(
		attrRun.String(runID), attrStep.String(c.path), attrAttempt.Int(c.attempt)))
}

// transport sends HTTP steps' requests with the W3C trace context of their
// step's span, in a client span of otelhttp's.
func (t *tracer) transport(base http.RoundTripper) http.RoundTripper {
	if t == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
}
