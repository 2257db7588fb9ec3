package api

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Published is the body of POST /v1/events: the event's id (the one given,
// or one the API chose) and its correlation id.
type Published struct {
	ID            string `json:"id"`
	CorrelationID string `json:"correlationid"`
	Status        string `json:"status"` // "accepted"
}

// decodeEvent reads an event in the CloudEvents JSON shape of baton.Event:
// type is required; id, source, subject, time, correlationid and data are
// optional.
func (h *handler) decodeEvent(w http.ResponseWriter, r *http.Request) (baton.Event, error) {
	op := r.Method + " " + r.URL.Path
	var e baton.Event
	if err := h.decode(w, r, &e, false); err != nil {
		return e, err
	}
	if e.Type == "" {
		return e, baton.Errorf(baton.Invalid, op, `"type" is required: the event's type, such as "order.placed.v1"`)
	}
	if _, _, err := event.ParseType(e.Type); err != nil {
		return e, err
	}
	if e.ID == "" {
		e.ID = event.NewID()
	}
	if len(e.Data) > 0 && e.DataContentType == "" {
		e.DataContentType = "application/json"
	}
	return e, nil
}

// publish publishes one event for choreography: whoever subscribes to its
// type gets it. The event is durable when the answer, 202, is sent.
func (h *handler) publish(w http.ResponseWriter, r *http.Request) {
	if h.pub == nil {
		writeError(w, baton.Errorf(baton.NotFound, r.Method+" "+r.URL.Path, "this process runs no services to publish to (baton server does)"))
		return
	}
	e, err := h.decodeEvent(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if e.CorrelationID == "" {
		// The business key, so that the history of the subject (baton
		// status KEY) finds the event and what it causes.
		e.CorrelationID = cmp.Or(e.Subject, e.ID)
	}
	if err := h.pub.Publish(traceContext(r), e); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, Published{ID: e.ID, CorrelationID: e.CorrelationID, Status: "accepted"})
}

// traceContext is the request's context: with tracing on it carries the
// request's server span, itself the child of the caller's context; without,
// the W3C trace context the headers carry (traceparent, tracestate), if
// any. Either way, what the request publishes or starts joins the caller's
// trace.
func traceContext(r *http.Request) context.Context {
	if trace.SpanContextFromContext(r.Context()).IsValid() {
		return r.Context()
	}
	return propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
}

// StreamKinds are the notification kinds GET /v1/stream may select. "run.*"
// selects every kind that begins with "run.".
var StreamKinds = []string{flow.RunCompleted, flow.RunFailed, flow.RunCancelled, flow.InputInvalid, flow.DeadLetter, flow.Alert,
	flow.ExpectationBroken, flow.ExpectationCleared}

// stream serves the hub's notifications as server-sent events; ?kind=
// (repeated, or comma-separated) selects kinds.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	if h.hub == nil {
		writeError(w, baton.Errorf(baton.NotFound, r.Method+" "+r.URL.Path, "this process has no notifications to stream (baton server has)"))
		return
	}
	kinds, err := streamKinds(r.URL.Query()["kind"])
	if err != nil {
		h.fail(w, r, err)
		return
	}
	release, ok := h.hold(w, r)
	if !ok {
		return
	}
	defer release()
	// A stream outlives the server's write timeout; ServeSSE bounds each
	// write instead.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	notify.ServeSSE(w, r, h.hub, kinds...)
}

func streamKinds(values []string) ([]string, error) {
	var kinds []string
	for _, v := range values {
		for k := range strings.SplitSeq(v, ",") {
			k = strings.TrimSpace(k)
			switch {
			case k == "":
			case k == "run.*":
				for _, known := range StreamKinds {
					if strings.HasPrefix(known, "run.") && !slices.Contains(kinds, known) {
						kinds = append(kinds, known)
					}
				}
			case slices.Contains(StreamKinds, k):
				if !slices.Contains(kinds, k) {
					kinds = append(kinds, k)
				}
			default:
				return nil, baton.Errorf(baton.Invalid, "query", "kind=%q is none of %s, run.*", k, strings.Join(StreamKinds, ", "))
			}
		}
	}
	return kinds, nil
}
