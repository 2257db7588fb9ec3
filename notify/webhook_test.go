package notify

import (
	"context"
	"encoding/base64"
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
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// whsecret is a secret in the Standard Webhooks form.
var whsecret = SecretPrefix + base64.StdEncoding.EncodeToString([]byte("a key of thirty-two bytes, random"))

// openStore is the embedded backend in memory: a real store.Deliveries.
func openStore(t *testing.T) *embedded.Backend {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatalf("open embedded backend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func pending(t *testing.T, st store.Deliveries) int64 {
	t.Helper()
	n, err := st.CountDeliveries(t.Context())
	if err != nil {
		t.Fatalf("count deliveries: %v", err)
	}
	return n
}

// Each request carries the Standard Webhooks headers, which both Verify and
// the Standard Webhooks library accept, with either form of secret.
func TestWebhookReceivesSignedNotification(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, secret string
		library      func() (*standardwebhooks.Webhook, error)
	}{
		{"whsec secret", whsecret, func() (*standardwebhooks.Webhook, error) { return standardwebhooks.NewWebhook(whsecret) }},
		{"raw secret", secret, func() (*standardwebhooks.Webhook, error) { return standardwebhooks.NewWebhookRaw([]byte(secret)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t)
			h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL + "/hook?token=x", Secret: tt.secret}}, Retry: fastRetry})
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
			if req.header.Get(HeaderID) == "" {
				t.Errorf("no %s header", HeaderID)
			}
			if err := Verify(tt.secret, req.header, req.body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("Verify: %v", err)
			}
			wh, err := tt.library()
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(req.body, req.header); err != nil {
				t.Errorf("the Standard Webhooks library refuses the request: %v", err)
			}
			var got flow.Notification
			if err := json.Unmarshal(req.body, &got); err != nil {
				t.Fatalf("body does not decode: %v\n%s", err, req.body)
			}
			if got.Kind != n.Kind || got.Message != n.Message || !got.Time.Equal(n.Time) || got.Run == nil ||
				got.Run.ID != "r1" || got.Run.Key != "ORDER-101" || got.Run.Status != store.RunCompleted || string(got.Run.Result) != `{"ok":true}` {
				t.Errorf("body decodes to %+v (run %+v), want %+v", got, got.Run, n)
			}
		})
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
	waitFor(t, "the deliveries", func() bool { s, _, _ := h.Stats(); return s == 4 })
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
			st := openStore(t)
			h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}}, Store: st, Retry: fastRetry})
			h.Notify(t.Context(), completed("r1"))
			waitFor(t, "the delivery to settle", func() bool { s, f, _ := h.Stats(); return s+f == 1 })
			stop(t, h)

			reqs := rc.requests()
			if len(reqs) != tt.requests {
				t.Fatalf("got %d requests, want %d", len(reqs), tt.requests)
			}
			id := reqs[0].header.Get(HeaderID)
			for i, r := range reqs {
				if got := r.header.Get(HeaderID); got != id {
					t.Errorf("request %d: delivery id %q, want %q as in the first", i, got, id)
				}
				if err := Verify(secret, r.header, r.body, time.Now(), time.Minute); err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
			if sent, failed, dropped := h.Stats(); sent != tt.sent || failed != tt.failed || dropped != 0 {
				t.Errorf("Stats = %d sent, %d failed, %d dropped; want %d, %d, 0", sent, failed, dropped, tt.sent, tt.failed)
			}
			if n := pending(t, st); n != 0 {
				t.Errorf("%d deliveries left in the store once settled, want 0", n)
			}
		})
	}
}

// With no limit on attempts, a delivery is retried until MaxAge has passed
// since its notification, then given up and removed from the store.
func TestWebhookGivesUpAfterMaxAge(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	st := openStore(t)
	h := newHub(t, Config{Webhooks: []Webhook{{URL: srv.URL, Secret: secret}}, Store: st,
		Retry: baton.RetryPolicy{Base: 5 * time.Millisecond, Cap: 20 * time.Millisecond}, MaxAge: 300 * time.Millisecond})
	h.Notify(t.Context(), completed("r1"))
	waitFor(t, "the delivery to be given up", func() bool { _, f, _ := h.Stats(); return f == 1 })
	if sent, _, dropped := h.Stats(); sent != 0 || dropped != 0 || calls.Load() < 2 {
		t.Errorf("%d calls, %d sent, %d dropped; want several calls, none sent or dropped", calls.Load(), sent, dropped)
	}
	if n := pending(t, st); n != 0 {
		t.Errorf("%d deliveries left in the store after giving up, want 0", n)
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
	waitFor(t, "the slow webhook's deliveries", func() bool { s, _, _ := h.Stats(); return s == 20 })
	stop(t, h)
}

// A notification the store refuses to keep is dropped and counted; the
// hub goes on.
func TestWebhookStoreRefusalDrops(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	st := openStore(t)
	h := newHub(t, Config{Webhooks: []Webhook{{URL: rc.URL, Secret: secret}, {URL: rc.URL + "/other", Secret: secret}}, Store: st})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	h.Notify(t.Context(), completed("r1"))
	if sent, failed, dropped := h.Stats(); sent != 0 || failed != 0 || dropped != 2 {
		t.Errorf("Stats = %d sent, %d failed, %d dropped; want 0, 0, 2 (one per webhook)", sent, failed, dropped)
	}
}

// Deliveries outlive the hub that produced them: those of a hub that never
// started, and those whose requests Stop aborted, are sent by the next hub
// on the store, under the same ids, without waiting for a claim to lapse.
func TestWebhookDeliveriesOutliveTheHub(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	// The endpoint hangs until told to answer; it records the ids it
	// answered and the first request it left hanging.
	var (
		answer  atomic.Bool
		mu      sync.Mutex
		ids     []string
		hung    string
		arrived = make(chan struct{}, 10)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body, so that the server notices when the client gives up.
		_, _ = io.ReadAll(r.Body)
		id := r.Header.Get(HeaderID)
		if !answer.Load() {
			mu.Lock()
			if hung == "" {
				hung = id
			}
			mu.Unlock()
			arrived <- struct{}{}
			<-r.Context().Done()
			return
		}
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	cfg := Config{Webhooks: []Webhook{{URL: srv.URL, Secret: secret}}, Store: st, Senders: 1}

	never, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		never.Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	stop(t, never)
	if n := pending(t, st); n != 3 {
		t.Fatalf("%d deliveries stored by a hub never started, want 3", n)
	}

	aborted := newHub(t, cfg)
	<-arrived // one request under way, hanging
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = aborted.Stop(ctx)
	if !errors.Is(err, context.Canceled) || baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("Stop = %v, want an unavailable error wrapping context.Canceled", err)
	}
	if n := pending(t, st); n != 3 {
		t.Fatalf("%d deliveries kept after the aborted Stop, want 3", n)
	}

	answer.Store(true)
	next := newHub(t, cfg)
	waitFor(t, "the next hub to send all three", func() bool { s, _, _ := next.Stats(); return s == 3 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(ids, hung) {
		t.Errorf("the delivery whose request was aborted (%s) was not sent again; sent %v", hung, ids)
	}
	if n := pending(t, st); n != 0 {
		t.Errorf("%d deliveries left, want 0", n)
	}
}

// Hubs sharing a store (servers sharing a database) post each delivery
// once between them.
func TestWebhookHubsShareTheStore(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		ids = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids[r.Header.Get(HeaderID)]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	st := openStore(t)
	cfg := Config{Webhooks: []Webhook{{URL: srv.URL, Secret: secret}}, Store: st}
	a, b := newHub(t, cfg), newHub(t, cfg)
	const n = 60
	for i := range n {
		[]*Hub{a, b}[i%2].Notify(t.Context(), completed(fmt.Sprint(i)))
	}
	waitFor(t, "every delivery", func() bool { sa, _, _ := a.Stats(); sb, _, _ := b.Stats(); return sa+sb == n })
	mu.Lock()
	defer mu.Unlock()
	var twice []string
	for id, c := range ids {
		if c != 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", id, c))
		}
	}
	if len(ids) != n || len(twice) > 0 {
		t.Errorf("%d ids received for %d notifications; posted more than once: %v", len(ids), n, twice)
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
	select {
	case <-h.Stopped():
	default:
		t.Error("Stopped() not closed after Stop")
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	st := openStore(t)
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
		{"whsec secret not base64", Config{Webhooks: []Webhook{{URL: "https://example.com/hook", Secret: "whsec_not base64!"}}}, "base64"},
		{"empty whsec secret", Config{Webhooks: []Webhook{{URL: "https://example.com/hook", Secret: "whsec_"}}}, "base64"},
		{"second webhook", Config{Webhooks: []Webhook{{URL: "https://a.example/", Secret: secret}, {URL: "https://b.example/"}}}, "webhook 1"},
		{"unknown kind", Config{Webhooks: []Webhook{{URL: "https://example.com/", Secret: secret, Kinds: []string{"run.complete"}}}}, `unknown notification kind "run.complete"`},
		{"negative senders", Config{Senders: -1}, "negative"},
		{"negative max age", Config{MaxAge: -time.Hour}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Store = st
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted the configuration")
			}
			if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v (code %s), want an invalid error mentioning %q", err, baton.ErrorCode(err), tt.want)
			}
		})
	}
	t.Run("no store", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{Webhooks: []Webhook{{URL: "https://example.com/hook", Secret: secret}}})
		if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "Config.Store") {
			t.Errorf("New without a store = %v, want an invalid error naming Config.Store", err)
		}
	})
	t.Run("secret query is not shown", func(t *testing.T) {
		t.Parallel()
		_, err := New(Config{Store: st, Webhooks: []Webhook{{URL: "http://user:pw@example.com/hook?token=abc"}}})
		if err == nil || strings.Contains(err.Error(), "abc") || strings.Contains(err.Error(), "pw") {
			t.Errorf("New = %v, want an error without the credentials", err)
		}
	})
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		if _, err := New(Config{Store: st, Webhooks: []Webhook{{URL: "https://example.com/hook", Secret: whsecret, Kinds: []string{flow.Alert, flow.RunCancelled}}}}); err != nil {
			t.Errorf("New: %v", err)
		}
	})
}

// headers are the Standard Webhooks headers of a request.
func headers(id string, ts int64, sigs ...string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, fmt.Sprint(ts))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"kind":"run.completed"}`)
	sig := func(secret, id string, at time.Time) string {
		s, err := Sign(secret, id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sig(whsecret, "msg_1", now)
	ts := now.Unix()
	tests := []struct {
		name   string
		secret string
		body   []byte
		header http.Header
		want   error // nil: accepted
	}{
		{"valid", whsecret, body, headers("msg_1", ts, good), nil},
		{"valid a while ago", whsecret, body, headers("msg_1", ts-240, sig(whsecret, "msg_1", now.Add(-4*time.Minute))), nil},
		{"rotated secrets", whsecret, body, headers("msg_1", ts, sig("old", "msg_1", now), good), nil},
		{"other versions ignored", whsecret, body, headers("msg_1", ts, "v1a,abc", good), nil},
		{"tampered body", whsecret, []byte(`{"kind":"run.failed"}`), headers("msg_1", ts, good), ErrBadSignature},
		{"wrong secret", "other", body, headers("msg_1", ts, good), ErrBadSignature},
		{"id changed", whsecret, body, headers("msg_2", ts, good), ErrBadSignature},
		{"timestamp changed", whsecret, body, headers("msg_1", ts-1, good), ErrBadSignature},
		{"signature not base64", whsecret, body, headers("msg_1", ts, "v1,zz!"), ErrBadSignature},
		{"too old", whsecret, body, headers("msg_1", ts-360, sig(whsecret, "msg_1", now.Add(-6*time.Minute))), ErrStaleSignature},
		{"in the future", whsecret, body, headers("msg_1", ts+360, sig(whsecret, "msg_1", now.Add(6*time.Minute))), ErrStaleSignature},
		{"no headers", whsecret, body, http.Header{}, ErrMalformedSignature},
		{"no id", whsecret, body, headers("", ts, good), ErrMalformedSignature},
		{"no signature", whsecret, body, headers("msg_1", ts), ErrMalformedSignature},
		{"garbage", whsecret, body, headers("msg_1", ts, "garbage"), ErrMalformedSignature},
		{"no v1", whsecret, body, headers("msg_1", ts, "v2,abc"), ErrMalformedSignature},
		{"timestamp not a number", whsecret, body, func() http.Header {
			h := headers("msg_1", ts, good)
			h.Set(HeaderTimestamp, "yesterday")
			return h
		}(), ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tt.secret, tt.header, tt.body, now, 5*time.Minute)
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
		if err := Verify(whsecret, headers("msg_1", ts, good), body, now.Add(24*time.Hour), 0); err != nil {
			t.Errorf("Verify with no tolerance = %v", err)
		}
	})
}

// Sign gives what the Standard Webhooks library gives, and the example in
// the specification.
func TestSignMatchesTheStandard(t *testing.T) {
	t.Parallel()
	const specSecret, specID = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek"
	got, err := Sign(specSecret, specID, time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; err != nil || got != want {
		t.Errorf("Sign of the specification's example = %q, %v; want %q", got, err, want)
	}
	wh, err := standardwebhooks.NewWebhook(whsecret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_700_000_123, 0)
	for _, body := range []string{``, `{}`, `{"kind":"dead_letter","x":"é"}`} {
		want, err := wh.Sign("01JD5Q", at, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Sign(whsecret, "01JD5Q", at, []byte(body)); err != nil || got != want {
			t.Errorf("Sign(%q) = %q, %v; the library gives %q", body, got, err, want)
		}
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
