package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/batonhq/baton"
)

// Health is the body of GET /healthz and of a ready GET /readyz.
type Health struct {
	Status string `json:"status"` // "ok" or "ready"
}

// readyTimeout bounds the store's answer to a readiness check.
const readyTimeout = 2 * time.Second

// healthz answers 200 while the process serves requests at all.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// readyz answers 200 when the process is ready (Config.Ready) and its store
// answers; 503 otherwise, with why in the log only (fail).
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if h.ready != nil {
		if err := h.ready(ctx); err != nil {
			h.fail(w, r, &baton.Error{Code: baton.Unavailable, Op: "not ready", Err: err})
			return
		}
	}
	// The cheapest read every store has: the journal after its end.
	if _, err := h.store.Since(ctx, ^uint64(0)>>1, 1); err != nil {
		h.fail(w, r, &baton.Error{Code: baton.Unavailable, Op: "not ready", Err: fmt.Errorf("the store does not answer: %w", err)})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ready"})
}
