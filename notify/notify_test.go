package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

func TestWebhookReceivesSignedNotification(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL + "/hook?token=x", Secret: secret}}, Retry: fastRetry})

	n := completed("r1")
	h.Notify(t.Context(), n)
	waitFor(t, "the delivery", func() bool { s, _, _ := h.Stats(); return s == 1 })

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := req.header.Get(HeaderEvent); got != flow.RunCompleted {
		t.Errorf("%s = %q, want %q", HeaderEvent, got, flow.RunCompleted)
	}
	if req.header.Get(HeaderDelivery) == "" {
		t.Errorf("no %s header", HeaderDelivery)
	}
	if err := Verify([]byte(secret), req.body, req.header.Get(HeaderSignature), time.Now(), 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	var got flow.Notification
	if err := json.Unmarshal(req.body, &got); err != nil {
		t.Fatalf("body does not decode: %v\n%s", err, req.body)
	}
	if got.Kind != n.Kind || got.Message != n.Message || !got.Time.Equal(n.Time) || got.Run == nil ||
		got.Run.ID != "r1" || got.Run.Key != "ORDER-101" || got.Run.Status != store.RunCompleted || string(got.Run.Result) != `{"ok":true}` {
		t.Errorf("body decodes to %+v (run %+v), want %+v", got, got.Run, n)
	}
}

func TestWebhookKinds(t *testing.T) {
	t.Parallel()
	byDefault, alerts := newReceiver(t), newReceiver(t)
	h := newHub(t, Config{Webhooks: []Webhook{
		{URL: byDefault.URL, Secret: secret},
		{URL: alerts.URL, Secret: secret, Kinds: []string{flow.Alert}},
	}})
	for _, kind := range []string{flow.Alert, flow.RunCancelled, flow.InputInvalid, flow.RunCompleted, flow.RunFailed, flow.DeadLetter} {
		h.Notify(t.Context(), flow.Notification{Kind: kind})
	}
	stop(t, h)

	kinds := func(rc *receiver) []string {
		var ks []string
		for _, r := range rc.requests() {
			ks = append(ks, r.header.Get(HeaderEvent))
		}
		slices.Sort(ks)
		return ks
	}
	if got, want := kinds(byDefault), []string{flow.DeadLetter, flow.RunCompleted, flow.RunFailed}; !slices.Equal(got, want) {
		t.Errorf("default webhook received %v, want %v", got, want)
	}
	if got, want := kinds(alerts), []string{flow.Alert}; !slices.Equal(got, want) {
		t.Errorf("alert webhook received %v, want %v", got, want)
	}
	if sent, failed, dropped := h.Stats(); sent != 4 || failed != 0 || dropped != 0 {
		t.Errorf("Stats = %d sent, %d failed, %d dropped; want 4, 0, 0", sent, failed, dropped)
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		statuses     []int
		requests     int
		sent, failed int64
	}{
		{"500 twice then 200", []int{500, 500, 200}, 3, 1, 0},
		{"429 then 200", []int{429, 200}, 2, 1, 0},
		{"503 until out of attempts", []int{503, 503, 503, 503, 503}, 5, 0, 1},
		{"400 is given up", []int{400}, 1, 0, 1},
		{"404 is given up", []int{404}, 1, 0, 1},
		{"a redirect is given up", []int{302}, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.statuses...)
			h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, Retry: fastRetry})
			h.Notify(t.Context(), completed("r1"))
			waitFor(t, "the delivery to settle", func() bool { s, f, _ := h.Stats(); return s+f == 1 })
			stop(t, h)

			reqs := rc.requests()
			if len(reqs) != tt.requests {
				t.Fatalf("got %d requests, want %d", len(reqs), tt.requests)
			}
			id := reqs[0].header.Get(HeaderDelivery)
			for i, r := range reqs {
				if got := r.header.Get(HeaderDelivery); got != id {
					t.Errorf("request %d: delivery id %q, want %q as in the first", i, got, id)
				}
				if err := Verify([]byte(secret), r.body, r.header.Get(HeaderSignature), time.Now(), time.Minute); err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
			if sent, failed, dropped := h.Stats(); sent != tt.sent || failed != tt.failed || dropped != 0 {
				t.Errorf("Stats = %d sent, %d failed, %d dropped; want %d, %d, 0", sent, failed, dropped, tt.sent, tt.failed)
			}
		})
	}
}

func TestWebhookRetriesNetworkErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
			return
		}
	}))
	t.Cleanup(srv.Close)
	h := newHub(t, Config{Webhooks: []Webhook{{URL: srv.URL, Secret: secret}}, Retry: fastRetry})
	h.Notify(t.Context(), completed("r1"))
	waitFor(t, "the delivery to settle", func() bool { s, f, _ := h.Stats(); return s+f == 1 })
	if sent, failed, _ := h.Stats(); sent != 1 || failed != 0 || calls.Load() != 2 {
		t.Errorf("%d calls, %d sent, %d failed; want 2, 1, 0", calls.Load(), sent, failed)
	}
}

func TestWebhookSlowEndpointDoesNotHoldOthers(t *testing.T) {
	t.Parallel()
	slow, fast := newReceiver(t), newReceiver(t)
	slow.gate = make(chan struct{})
	h := newHub(t, Config{Webhooks: []Webhook{{URL: slow.URL, Secret: secret}, {URL: fast.URL, Secret: secret}}, Senders: 1})
	for i := range 10 {
		h.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	waitFor(t, "the fast webhook's deliveries", func() bool { return len(fast.requests()) == 10 })
	close(slow.gate)
	stop(t, h)
	if sent, _, _ := h.Stats(); sent != 20 {
		t.Errorf("sent %d, want 20", sent)
	}
}

func TestWebhookQueueFullDrops(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	h, err := New(Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Not started: nothing leaves the queue.
	for i := range 5 {
		h.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	if _, _, dropped := h.Stats(); dropped != 3 {
		t.Errorf("dropped %d, want 3", dropped)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop(t, h)
	if sent, failed, dropped := h.Stats(); sent != 2 || failed != 0 || dropped != 3 {
		t.Errorf("Stats = %d sent, %d failed, %d dropped; want 2, 0, 3", sent, failed, dropped)
	}
	if got := len(rc.requests()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

func (h *Hub) isStopping() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.stopping
}

func TestStopDeliversQueued(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.gate = make(chan struct{})
	h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, Senders: 1})
	for i := range 20 {
		h.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	<-rc.arrived // the first is being posted; the others wait in the queue

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- h.Stop(ctx)
	}()
	waitFor(t, "Stop to begin", h.isStopping)
	h.Notify(t.Context(), completed("late")) // refused: the hub is stopping
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while deliveries were queued", err)
	default:
	}
	close(rc.gate)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Stop did not return")
	}
	if got := len(rc.requests()); got != 20 {
		t.Errorf("%d requests when Stop returned, want 20", got)
	}
	if sent, failed, dropped := h.Stats(); sent != 20 || failed != 0 || dropped != 1 {
		t.Errorf("Stats = %d sent, %d failed, %d dropped; want 20, 0, 1", sent, failed, dropped)
	}
	select {
	case <-h.Stopped():
	default:
		t.Error("Stopped() not closed after Stop")
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopDeadlineDropsWhatIsLeft(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.gate = make(chan struct{}) // never opened: the endpoint hangs
	h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, Senders: 1})
	for i := range 3 {
		h.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	<-rc.arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.Stop(ctx)
	if !errors.Is(err, context.Canceled) || baton.ErrorCode(err) != baton.Unavailable {
		t.Fatalf("Stop = %v, want an unavailable error wrapping context.Canceled", err)
	}
	if sent, failed, dropped := h.Stats(); sent != 0 || failed != 0 || dropped != 3 {
		t.Errorf("Stats = %d sent, %d failed, %d dropped; want 0, 0, 3", sent, failed, dropped)
	}
}

func TestStartTwice(t *testing.T) {
	t.Parallel()
	h := newHub(t, Config{})
	if err := h.Start(t.Context()); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("second Start = %v, want a conflict", err)
	}
	stop(t, h)
	if err := h.Start(t.Context()); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("Start after Stop = %v, want a conflict", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"ftp url", Config{Webhooks: []Webhook{{URL: "ftp://example.com/x", Secret: secret}}}, "http or https"},
		{"relative url", Config{Webhooks: []Webhook{{URL: "example.com/hook", Secret: secret}}}, "http or https"},
		{"unparsable url", Config{Webhooks: []Webhook{{URL: "http://exa mple.com/", Secret: secret}}}, "does not parse"},
		{"no host", Config{Webhooks: []Webhook{{URL: "https:///hook", Secret: secret}}}, "no host"},
		{"empty url", Config{Webhooks: []Webhook{{Secret: secret}}}, "http or https"},
		{"empty secret", Config{Webhooks: []Webhook{{URL: "https://example.com/hook"}}}, "secret is required"},
		{"second webhook", Config{Webhooks: []Webhook{{URL: "https://a.example/", Secret: secret}, {URL: "https://b.example/"}}}, "webhook 1"},
		{"unknown kind", Config{Webhooks: []Webhook{{URL: "https://example.com/", Secret: secret, Kinds: []string{"run.complete"}}}}, `unknown notification kind "run.complete"`},
		{"negative queue", Config{QueueSize: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted the configuration")
			}
			if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v (code %s), want an invalid error mentioning %q", err, baton.ErrorCode(err), tt.want)
			}
		})
	}
	t.Run("secret query is not shown", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{Webhooks: []Webhook{{URL: "http://user:pw@example.com/hook?token=abc"}}})
		if err == nil || strings.Contains(err.Error(), "abc") || strings.Contains(err.Error(), "pw") {
			t.Errorf("New = %v, want an error without the credentials", err)
		}
	})
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		if _, err := New(Config{Webhooks: []Webhook{{URL: "https://example.com/hook", Secret: secret, Kinds: []string{flow.Alert, flow.RunCancelled}}}}); err != nil {
			t.Errorf("New: %v", err)
		}
	})
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"kind":"run.completed"}`)
	key := []byte(secret)
	good := Sign(key, body, now)
	ts := fmt.Sprint(now.Unix())
	tests := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		want   error // nil: accepted
	}{
		{"valid", key, body, good, nil},
		{"valid a while ago", key, body, Sign(key, body, now.Add(-4*time.Minute)), nil},
		{"rotated secrets", key, body, Sign([]byte("old"), body, now) + ",v1=" + strings.SplitN(good, "v1=", 2)[1], nil},
		{"unknown scheme ignored", key, body, good + ",v0=abc", nil},
		{"tampered body", key, []byte(`{"kind":"run.failed"}`), good, ErrBadSignature},
		{"wrong secret", []byte("other"), body, good, ErrBadSignature},
		{"timestamp changed", key, body, "t=" + fmt.Sprint(now.Unix()-1) + ",v1=" + strings.SplitN(good, "v1=", 2)[1], ErrBadSignature},
		{"too old", key, body, Sign(key, body, now.Add(-6*time.Minute)), ErrStaleSignature},
		{"in the future", key, body, Sign(key, body, now.Add(6*time.Minute)), ErrStaleSignature},
		{"empty", key, body, "", ErrMalformedSignature},
		{"garbage", key, body, "garbage", ErrMalformedSignature},
		{"no timestamp", key, body, "v1=" + strings.SplitN(good, "v1=", 2)[1], ErrMalformedSignature},
		{"no signature", key, body, "t=" + ts, ErrMalformedSignature},
		{"timestamp not a number", key, body, "t=yesterday,v1=" + strings.SplitN(good, "v1=", 2)[1], ErrMalformedSignature},
		{"signature not hex", key, body, "t=" + ts + ",v1=zz", ErrMalformedSignature},
		{"signature too short", key, body, "t=" + ts + ",v1=abcd", ErrMalformedSignature},
		{"two timestamps", key, body, good + ",t=" + ts, ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tt.secret, tt.body, tt.header, now, 5*time.Minute)
			if tt.want == nil {
				if err != nil {
					t.Errorf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || baton.ErrorCode(err) != baton.Invalid {
				t.Errorf("Verify = %v, want an invalid error wrapping %q", err, tt.want)
			}
		})
	}
	t.Run("no tolerance", func(t *testing.T) {
		t.Parallel()
		if err := Verify(key, body, good, now.Add(24*time.Hour), 0); err != nil {
			t.Errorf("Verify with no tolerance = %v", err)
		}
	})
}

func TestSignFormat(t *testing.T) {
	t.Parallel()
	got := Sign([]byte("k"), []byte("b"), time.Unix(42, 0))
	// HMAC-SHA256("k", "42.b")
	want := "t=42,v1=" + fmt.Sprintf("%x", mac([]byte("k"), 42, []byte("b")))
	if got != want || !strings.HasPrefix(got, "t=42,v1=") || len(got) != len("t=42,v1=")+64 {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
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
