package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	sseHeartbeat = 15 * time.Second
	// sseWriteTimeout bounds each write to a stream, so that a client that
	// stopped reading does not hold the handler forever (and so that a
	// server's WriteTimeout does not cut a healthy stream).
	sseWriteTimeout = 30 * time.Second
)

// ServeSSE streams the hub's notifications of the given kinds (all when none
// are given) to the client as server-sent events: first "retry: 2000", then
// "event: <kind>" and "data: <notification as JSON>" per notification, and a
// comment every 15s to keep proxies from closing an idle stream. Each is
// flushed at once. It returns when the client goes, when the hub stops, or
// when the client falls so far behind that the hub drops it (the client
// then reconnects).
func ServeSSE(w http.ResponseWriter, r *http.Request, h *Hub, kinds ...string) {
	serveSSE(w, r, h, sseHeartbeat, kinds)
}

func serveSSE(w http.ResponseWriter, r *http.Request, h *Hub, heartbeat time.Duration, kinds []string) {
	// Subscribed before the first line is written: a client that has read
	// it misses nothing published after.
	ch, cancel := h.Subscribe(kinds...)
	defer cancel()
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) // not every writer supports deadlines
		if _, err := io.WriteString(w, s); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			h.log.Error("notify: event stream cannot be flushed", "err", err)
			return false
		}
		return true
	}
	if !write("retry: 2000\n\n") {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case n, ok := <-ch:
			if !ok {
				return
			}
			data, err := json.Marshal(n)
			if err != nil {
				h.log.Error("notify: notification not encoded for the event stream", "kind", n.Kind, "err", err)
				continue
			}
			if !write(frame(n.Kind, data)) {
				return
			}
		case <-tick.C:
			if !write(": heartbeat\n\n") {
				return
			}
		}
	}
}

// frame writes one event. A line break (CR, LF or both) would end a field,
// so the kind has none and each line of the data gets its own "data:"
// (encoding/json writes none, but the format allows them).
func frame(kind string, data []byte) string {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(strings.NewReplacer("\r", "", "\n", "").Replace(kind))
	b.WriteByte('\n')
	lines := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
	for line := range strings.SplitSeq(lines, "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
}
