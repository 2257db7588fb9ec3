package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

const secret = "s3cret"

// fastRetry keeps retries short in tests.
var fastRetry = baton.RetryPolicy{MaxAttempts: 5, Base: time.Millisecond, Cap: 5 * time.Millisecond}

type request struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint that records what it receives and answers
// with the statuses given, then 200.
type receiver struct {
	*httptest.Server
	statuses []int
	gate     chan struct{} // when not nil, requests wait until it is closed
	arrived  chan struct{} // receives a value as each request arrives (if there is room)

	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	rc := &receiver{statuses: statuses, arrived: make(chan struct{}, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.reqs)
	rc.reqs = append(rc.reqs, request{header: r.Header.Clone(), body: body})
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
	if rc.gate != nil {
		select {
		case <-rc.gate:
		case <-r.Context().Done():
			return
		}
	}
	if n < len(rc.statuses) {
		w.WriteHeader(rc.statuses[n])
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// newHub returns a started hub that is stopped when the test ends.
func newHub(t *testing.T, cfg Config) *Hub {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = openStore(t)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Stop(ctx)
	})
	return h
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func stop(t *testing.T, h *Hub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func completed(id string) flow.Notification {
	return flow.Notification{
		Kind:    flow.RunCompleted,
		Time:    time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Message: "run " + id + " completed",
		Run:     &store.Run{ID: id, Flow: "order", Version: 2, Key: "ORDER-101", Status: store.RunCompleted, Result: json.RawMessage(`{"ok":true}`)},
	}
}

// sseEvent is one event read from a stream: its fields, or a comment.
type sseEvent struct {
	fields  map[string]string
	comment string
}

// readEvent reads up to the next blank line.
func readEvent(br *bufio.Reader) (sseEvent, error) {
	ev := sseEvent{fields: map[string]string{}}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev, nil
		}
		if c, ok := strings.CutPrefix(line, ":"); ok {
			ev.comment = strings.TrimSpace(c)
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		ev.fields[k] += strings.TrimPrefix(v, " ")
	}
}

// openStream serves the hub's stream (with the query's kind values) and
// returns a reader of it, past its retry line.
func openStream(t *testing.T, h *Hub, query string, heartbeat time.Duration) (*bufio.Reader, context.CancelFunc) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, h, heartbeat, r.URL.Query()["kind"])
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(func() { cancel(); srv.Close() })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	first, err := readEvent(br)
	if err != nil {
		t.Fatal(err)
	}
	if first.fields["retry"] != "2000" {
		t.Fatalf("first event %+v, want retry: 2000", first)
	}
	return br, cancel
}

func TestServeSSE(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	br, _ := openStream(t, h, "", sseHeartbeat)

	sent := []flow.Notification{
		completed("r1"),
		{Kind: flow.Alert, Message: "stock low\nreorder"},
		{Kind: flow.DeadLetter, Dead: &store.DeadLetter{ID: "d1", Group: "billing", Type: "order.placed.v1", Body: []byte("{"), Reason: "malformed"}},
		{Kind: flow.InputInvalid, Request: &flow.StartRequest{Flow: "order", Key: "K", Input: json.RawMessage(`{"a": [1, 2]}`)}},
	}
	for _, n := range sent {
		h.Notify(t.Context(), n)
	}
	for i, want := range sent {
		ev, err := readEvent(br)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.fields["event"] != want.Kind {
			t.Errorf("event %d is %q, want %q", i, ev.fields["event"], want.Kind)
		}
		var got flow.Notification
		if err := json.Unmarshal([]byte(ev.fields["data"]), &got); err != nil {
			t.Fatalf("event %d: data does not decode: %v\n%s", i, err, ev.fields["data"])
		}
		if got.Kind != want.Kind || got.Message != want.Message || got.Time.IsZero() {
			t.Errorf("event %d decodes to %+v, want %+v", i, got, want)
		}
		switch i {
		case 0:
			if got.Run == nil || got.Run.ID != "r1" {
				t.Errorf("event 0: run %+v", got.Run)
			}
		case 2:
			if got.Dead == nil || got.Dead.ID != "d1" || string(got.Dead.Body) != "{" {
				t.Errorf("event 2: dead letter %+v", got.Dead)
			}
		case 3:
			if got.Request == nil || got.Request.Key != "K" || string(got.Request.Input) != `{"a":[1,2]}` {
				t.Errorf("event 3: request %+v", got.Request)
			}
		}
	}

	// Stopping the hub ends the stream.
	stop(t, h)
	if ev, err := readEvent(br); err != io.EOF {
		t.Errorf("after Stop: read %+v, %v; want EOF", ev, err)
	}
}

func TestServeSSEKinds(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	br, _ := openStream(t, h, "kind=dead_letter&kind=run.failed", sseHeartbeat)
	for _, kind := range []string{flow.RunCompleted, flow.DeadLetter, flow.Alert, flow.RunFailed} {
		h.Notify(t.Context(), flow.Notification{Kind: kind})
	}
	for _, want := range []string{flow.DeadLetter, flow.RunFailed} {
		ev, err := readEvent(br)
		if err != nil {
			t.Fatal(err)
		}
		if ev.fields["event"] != want {
			t.Errorf("event %q, want %q", ev.fields["event"], want)
		}
	}
}

func TestServeSSEHeartbeat(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	br, _ := openStream(t, h, "", time.Millisecond)
	ev, err := readEvent(br)
	if err != nil || ev.comment != "heartbeat" || len(ev.fields) != 0 {
		t.Errorf("read %+v, %v; want a heartbeat comment", ev, err)
	}
}

func TestServeSSEClientGoes(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, cancel := openStream(t, h, "", sseHeartbeat)
	if n := h.subscribers(); n != 1 {
		t.Fatalf("%d subscribers, want 1", n)
	}
	cancel()
	waitFor(t, "the stream's subscription to end", func() bool { return h.subscribers() == 0 })
}

func TestSubscribeKinds(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	alerts, cancelAlerts := h.Subscribe(flow.Alert, flow.InputInvalid)
	all, cancelAll := h.Subscribe()
	for _, kind := range []string{flow.RunCompleted, flow.Alert, flow.DeadLetter, flow.InputInvalid} {
		h.Notify(t.Context(), flow.Notification{Kind: kind})
	}
	// Notify has put them in the buffers before returning.
	if len(alerts) != 2 || len(all) != 4 {
		t.Fatalf("buffered %d and %d, want 2 and 4", len(alerts), len(all))
	}
	for _, want := range []string{flow.Alert, flow.InputInvalid} {
		if n := <-alerts; n.Kind != want {
			t.Errorf("got %q, want %q", n.Kind, want)
		}
	}
	cancelAlerts()
	cancelAlerts() // idempotent
	if _, ok := <-alerts; ok {
		t.Error("channel open after cancel")
	}
	h.Notify(t.Context(), flow.Notification{Kind: flow.Alert})
	if len(all) != 5 {
		t.Errorf("%d buffered, want 5", len(all))
	}
	cancelAll()
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	t.Parallel()
	const total, buffer = 10_000, 256
	h, err := New(Config{Buffer: buffer})
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := h.Subscribe() // never read until the end
	fast, cancelFast := h.Subscribe()
	defer cancelFast()

	var received atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range total {
			n, ok := <-fast
			if !ok {
				done <- fmt.Errorf("fast subscriber dropped after %d", i)
				return
			}
			if n.Message != fmt.Sprint(i) {
				done <- fmt.Errorf("notification %d is %q", i, n.Message)
				return
			}
			received.Add(1)
		}
		done <- nil
	}()

	deadline := time.Now().Add(30 * time.Second)
	for i := range total {
		// The fast subscriber keeps up: the publisher never gets half a
		// buffer ahead of it. The slow one is never read.
		for int64(i)-received.Load() >= buffer/2 {
			if time.Now().After(deadline) {
				t.Fatalf("the fast subscriber stalled at %d", received.Load())
			}
			time.Sleep(10 * time.Microsecond)
		}
		h.Notify(t.Context(), flow.Notification{Kind: flow.Alert, Message: fmt.Sprint(i)})
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the fast subscriber received %d of %d", received.Load(), total)
	}

	// The slow subscriber got a buffer's worth, then its channel closed.
	got := 0
	for range slow {
		got++
	}
	if got != buffer {
		t.Errorf("slow subscriber received %d before being dropped, want %d", got, buffer)
	}
	if n := h.subscribers(); n != 1 {
		t.Errorf("%d subscribers, want the fast one", n)
	}
}

func TestSubscribeAfterStop(t *testing.T) {
	t.Parallel()
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	live, _ := h.Subscribe()
	stop(t, h) // never started: nothing to deliver
	if _, ok := <-live; ok {
		t.Error("subscription open after Stop")
	}
	ch, cancel := h.Subscribe()
	defer cancel()
	if _, ok := <-ch; ok {
		t.Error("subscription to a stopped hub is open")
	}
	h.Notify(t.Context(), flow.Notification{Kind: flow.Alert}) // does not panic
}

func TestFrame(t *testing.T) {
	t.Parallel()
	got := frame("al\nert", []byte("{\r\n\"a\": 1\r}"))
	want := "event: alert\ndata: {\ndata: \"a\": 1\ndata: }\n\n"
	if got != want {
		t.Errorf("frame = %q, want %q", got, want)
	}
}
