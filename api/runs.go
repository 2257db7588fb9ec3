package api

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// IdempotencyKey is the header that may carry a start's business key
// instead of the body's "key".
const IdempotencyKey = "Idempotency-Key"

// Started is the body of POST /v1/runs: the run, and where to follow it
// (StatusURL, also in the Location header). The status is 202 Accepted for
// a new run and 200 OK when the flow already had a run with the key.
type Started struct {
	store.Run
	StatusURL string `json:"status_url"`
}

// RunPage is the body of GET /v1/runs.
type RunPage struct {
	Runs []store.Run `json:"runs"`
}

// CancelRequest is the body of POST /v1/runs/{id}/cancel; it may be empty.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// FlowPage is the body of GET /v1/flows: every definition, every version,
// by name then version.
type FlowPage struct {
	Flows []flow.Flow `json:"flows"`
}

// RunPath is the path of a run's status.
func RunPath(id string) string { return "/v1/runs/" + url.PathEscape(id) }

func (h *handler) startRun(w http.ResponseWriter, r *http.Request) {
	var req flow.StartRequest
	err := h.decode(w, r, &req, false)
	if err == nil {
		err = h.checkKey(r, &req)
	}
	if err != nil {
		// The coordinator tells the notifier of the starts it refuses;
		// these it never saw.
		if h.hub != nil {
			h.hub.Notify(r.Context(), flow.Notification{Kind: flow.InputInvalid, Time: time.Now().UTC(), Message: err.Error(), Request: &req})
		}
		h.fail(w, r, err)
		return
	}
	run, created, err := h.coord.StartRun(traceContext(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	loc := RunPath(run.ID)
	w.Header().Set("Location", loc)
	writeJSON(w, status, Started{Run: run, StatusURL: loc})
}

// checkKey takes the business key from the body or the Idempotency-Key
// header, and requires one, and the flow.
func (h *handler) checkKey(r *http.Request, req *flow.StartRequest) error {
	const op = "start run"
	header := r.Header.Get(IdempotencyKey)
	switch {
	case req.Flow == "":
		return baton.Errorf(baton.Invalid, op, `"flow" is required: the name of the flow to run (GET /v1/flows lists them)`)
	case req.Version < 0:
		return baton.Errorf(baton.Invalid, op, `"version" %d: give a version from 1, or 0 or none for the latest`, req.Version)
	case req.Key != "" && header != "" && req.Key != header:
		return baton.Errorf(baton.Invalid, op, "the body's key %q and the %s header %q differ; give one", req.Key, IdempotencyKey, header)
	case req.Key == "" && header == "":
		return baton.Errorf(baton.Invalid, op, `a key is required: the run's business key (an order id, say), as "key" in the body or an %s header; starting the same key again returns the same run`, IdempotencyKey)
	case req.Key == "":
		req.Key = header
	}
	return nil
}

func (h *handler) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := h.coord.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

var runStatuses = []store.RunStatus{store.RunPending, store.RunRunning, store.RunCompensating, store.RunCompleted, store.RunFailed, store.RunCancelled}

func (h *handler) listRuns(w http.ResponseWriter, r *http.Request) {
	q, err := runQuery(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	runs, err := h.coord.Runs(r.Context(), q)
	if q.After != "" && errors.Is(err, baton.ErrNotFound) {
		err = baton.Errorf(baton.Invalid, "query", "after=%q: no such run (give the id of the last run of the previous page)", q.After)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if runs == nil {
		runs = []store.Run{}
	}
	writeJSON(w, http.StatusOK, RunPage{Runs: runs})
}

// runQuery reads GET /v1/runs's query: flow, status, key, since, until
// (RFC 3339), after (a run id), limit.
func runQuery(v url.Values) (store.RunQuery, error) {
	q := store.RunQuery{Flow: v.Get("flow"), Key: v.Get("key"), After: v.Get("after")}
	if s := v.Get("status"); s != "" {
		q.Status = store.RunStatus(s)
		if !slices.Contains(runStatuses, q.Status) {
			return q, baton.Errorf(baton.Invalid, "query", "status=%q is none of %v", s, runStatuses)
		}
	}
	var err error
	if q.Since, err = timeParam(v.Get("since"), "since"); err != nil {
		return q, err
	}
	if q.Until, err = timeParam(v.Get("until"), "until"); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, baton.Errorf(baton.Invalid, "query", "since=%s is not before until=%s", v.Get("since"), v.Get("until"))
	}
	if q.Limit, err = limitParam(v.Get("limit")); err != nil {
		return q, err
	}
	return q, nil
}

func timeParam(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, baton.Errorf(baton.Invalid, "query", "%s=%q is not an RFC 3339 time such as 2006-01-02T15:04:05Z", name, s)
	}
	return t, nil
}

func (h *handler) cancelRun(w http.ResponseWriter, r *http.Request) {
	var req CancelRequest
	if err := h.decode(w, r, &req, true); err != nil {
		h.fail(w, r, err)
		return
	}
	run, err := h.coord.Cancel(r.Context(), r.PathValue("id"), req.Reason)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// signalRun delivers an external event to a run waiting for its type: a
// CloudEvents-shaped object of which type is required; data, id, source and
// subject are optional.
func (h *handler) signalRun(w http.ResponseWriter, r *http.Request) {
	e, err := h.decodeEvent(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	run, err := h.coord.Signal(r.Context(), r.PathValue("id"), e)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (h *handler) flows(w http.ResponseWriter, r *http.Request) {
	fs := h.coord.Flows()
	slices.SortFunc(fs, func(a, b flow.Flow) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	if fs == nil {
		fs = []flow.Flow{}
	}
	writeJSON(w, http.StatusOK, FlowPage{Flows: fs})
}
