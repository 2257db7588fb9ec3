package flow_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// Until sleeps until a time taken from the run's data: a time past does not
// wait, a future one wakes the run, a value that is not a time fails it.
func TestUntil(t *testing.T) {
	t.Parallel()
	h := launch(t, setup{flows: []flow.Flow{{
		Name: "wake", Version: 1,
		Steps: []flow.Step{{Name: "until", Until: "{{input.at}}"}, {Name: "done", Notify: &flow.Notify{Message: "woke"}}},
	}}})
	past := h.start("wake", "past", map[string]string{"at": time.Now().Add(-time.Hour).Format(time.RFC3339)})
	soon := h.start("wake", "soon", map[string]string{"at": time.Now().Add(300 * time.Millisecond).Format(time.RFC3339Nano)})
	bad := h.start("wake", "bad", map[string]string{"at": "tomorrow"})
	h.waitStatus(past.ID, store.RunCompleted)
	h.waitStatus(soon.ID, store.RunCompleted)
	r := h.waitStatus(bad.ID, store.RunFailed)
	if !strings.Contains(r.Error, `until "tomorrow": not an RFC 3339 time`) {
		t.Errorf("error %q does not say the time is not one", r.Error)
	}
}

// HTTP steps retry a 5xx by default.
func TestHTTPStepRetriesByDefault(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	h := launch(t, setup{flows: []flow.Flow{{
		Name: "call", Version: 1,
		Steps: []flow.Step{{Name: "get", HTTP: &flow.HTTPCall{URL: srv.URL}}},
	}}})
	r := h.waitStatus(h.start("call", "k", nil).ID, store.RunCompleted)
	if n := calls.Load(); n != 2 || r.Steps["get"].Attempts != 2 {
		t.Errorf("%d calls, %d attempts; want 2 of each (one 503 retried)", n, r.Steps["get"].Attempts)
	}
}
