package api

import (
	"net/http"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/traffic"
)

// trafficMap serves GET /v1/map?window=15m: the choreography map drawn from
// the journal's entries of the last window (default traffic.DefaultWindow).
func (h *handler) trafficMap(w http.ResponseWriter, r *http.Request) {
	window := traffic.DefaultWindow
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeError(w, baton.Errorf(baton.Invalid, "query", "window=%q is not a positive duration such as 15m or 24h", s))
			return
		}
		window = d
	}
	now := time.Now()
	m, err := traffic.Build(r.Context(), h.store, traffic.Query{From: now.Add(-window), To: now})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
