package api

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// Limits of the list endpoints.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxWait is the longest a journal request may long-poll.
	MaxWait = 60 * time.Second
)

// pollEvery is how often the journal is read while requests long-poll it
// (journalWatch): the store has no notification to wait on.
const pollEvery = 50 * time.Millisecond

// JournalPage is the body of GET /v1/journal.
type JournalPage struct {
	Entries []store.Entry `json:"entries"`
}

// History is the body of GET /v1/history/{correlationID}: a page of the
// entries journaled under the id, in order. Entries is empty, not an
// error, when nothing was journaled under the id, as in the store. Next,
// when not zero, is the sequence number to give as after= for the next
// page; it is zero on the last page.
type History struct {
	CorrelationID string        `json:"correlation_id"`
	Entries       []store.Entry `json:"entries"`
	Next          uint64        `json:"next,omitempty"`
}

// DeadLetterPage is the body of GET /v1/dead-letters.
type DeadLetterPage struct {
	DeadLetters []store.DeadLetter `json:"dead_letters"`
}

// Replayed is the body of POST /v1/dead-letters/{id}/replay.
type Replayed struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "replayed"
}

func (h *handler) journal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	wait, err := waitParam(q.Get("wait"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if wait > 0 {
		release, ok := h.hold(w, r)
		if !ok {
			return
		}
		defer release()
		// The server's write timeout counts from the start of the request:
		// leave room for the wait.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + writeTimeout))
	}
	entries, err := h.since(r.Context(), after, limit, wait)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, JournalPage{Entries: nonNil(entries)})
}

// since returns the entries after after, waiting up to wait for the first
// one. A request that ends while waiting gets what there is: nothing.
func (h *handler) since(ctx context.Context, after uint64, limit int, wait time.Duration) ([]store.Entry, error) {
	if wait == 0 {
		return h.store.Since(ctx, after, limit)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Waiting starts before the read: an entry added between the
		// two wakes this request.
		grown, stop := h.journalW.wait(after)
		entries, err := h.store.Since(ctx, after, limit)
		if err != nil || len(entries) > 0 {
			stop()
			return entries, err
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, nil
		case <-timer.C:
			stop()
			return nil, nil
		case <-grown:
		}
	}
}

// history serves a page of a correlation id's history: limit entries
// (DefaultLimit, at most MaxLimit) after the sequence number after.
func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("correlationID")
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	entries, err := h.store.History(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	i, _ := slices.BinarySearchFunc(entries, after+1, func(e store.Entry, seq uint64) int { return cmp.Compare(e.Seq, seq) })
	page := History{CorrelationID: id, Entries: entries[i:]}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		page.Next = page.Entries[limit-1].Seq
	}
	page.Entries = nonNil(page.Entries)
	writeJSON(w, http.StatusOK, page)
}

func (h *handler) listDead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	dead, err := h.store.ListDead(r.Context(), q.Get("after"), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if dead == nil {
		dead = []store.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, DeadLetterPage{DeadLetters: dead})
}

func (h *handler) dead(w http.ResponseWriter, r *http.Request) {
	d, err := h.store.Dead(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *handler) replayDead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := bus.Replay(r.Context(), h.transport, h.store, id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Replayed{ID: id, Status: "replayed"})
}

func (h *handler) dropDead(w http.ResponseWriter, r *http.Request) {
	if err := h.store.DropDead(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func uintParam(s, name string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, baton.Errorf(baton.Invalid, "query", "%s=%q is not a sequence number", name, s)
	}
	return n, nil
}

func limitParam(s string) (int, error) {
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, baton.Errorf(baton.Invalid, "query", "limit=%q is not a number from 1 to %d", s, MaxLimit)
	}
	return n, nil
}

func waitParam(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxWait {
		return 0, baton.Errorf(baton.Invalid, "query", "wait=%q is not a duration from 0s to %v", s, MaxWait)
	}
	return d, nil
}

func nonNil(entries []store.Entry) []store.Entry {
	if entries == nil {
		return []store.Entry{}
	}
	return entries
}
