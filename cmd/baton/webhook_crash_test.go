package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
)

// crashReceiver is a webhook endpoint that verifies each request with the
// Standard Webhooks library, answers 503 until it is told to take them, and
// dedupes by webhook-id, as the docs tell receivers to.
type crashReceiver struct {
	verifier *standardwebhooks.Webhook
	take     atomic.Bool

	mu      sync.Mutex
	refused map[string]string // id -> run key, of the requests answered 503
	taken   map[string]string // id -> run key, of the requests taken
	repeats int               // requests taken for an id already taken
	bad     int               // requests that did not verify
}

func (c *crashReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.verifier.Verify(body, r.Header); err != nil {
		c.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var n flow.Notification
	if err := json.Unmarshal(body, &n); err != nil || n.Kind != flow.RunCompleted || n.Run == nil {
		return // another kind of notification: not counted here
	}
	id := r.Header.Get(notify.HeaderID)
	if !c.take.Load() {
		c.refused[id] = n.Run.Key
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if _, dup := c.taken[id]; dup {
		c.repeats++
		return
	}
	c.taken[id] = n.Run.Key
}

func (c *crashReceiver) counts() (refused, taken map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.refused), maps.Clone(c.taken)
}

// A server killed with SIGKILL while its webhook deliveries wait for a
// failing receiver sends every one of them after it restarts, under the ids
// it gave them before the crash: the deliveries live in the store.
func TestWebhookDeliveriesSurviveKill(t *testing.T) {
	t.Parallel()
	secret := notify.SecretPrefix + base64.StdEncoding.EncodeToString([]byte("thirty-two bytes of webhook key!"))
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &crashReceiver{verifier: verifier, refused: map[string]string{}, taken: map[string]string{}}
	hooks := httptest.NewServer(rc)
	defer hooks.Close()

	dir := t.TempDir()
	env := []string{"BATON_WEBHOOK_SECRET=" + secret}
	args := []string{"server", "--demo", "--data", dir, "--addr", "127.0.0.1:0", "--webhook", hooks.URL,
		"--webhook-backoff-cap", "500ms"}
	srv := startProcEnv(t, "server", serverReady, env, args...)
	c := client.New(srv.url(), nil)
	defer c.Close()

	const orderCount = 6
	keys := make([]string, orderCount)
	for i := range orderCount {
		keys[i] = fmt.Sprintf("o-%d", 9000+i)
		if _, _, err := c.StartRun(t.Context(), flow.StartRequest{Flow: "order", Key: keys[i], Input: json.RawMessage(orderInput(9000 + i))}); err != nil {
			t.Fatalf("start %s: %v", keys[i], err)
		}
	}
	// Every run completed and its notification was refused at least once:
	// the deliveries wait in the store for their next attempt.
	waitForProc(t, "a refused delivery for every order", srv, func() bool {
		refused, _ := rc.counts()
		return len(refused) == orderCount
	})
	srv.kill()

	rc.take.Store(true)
	restarted := startProcEnv(t, "restarted server", serverReady, env, args...)
	waitForProc(t, "every delivery after the restart", restarted, func() bool {
		_, taken := rc.counts()
		return len(taken) == orderCount
	})
	refused, taken := rc.counts()
	if got, want := slices.Sorted(maps.Keys(taken)), slices.Sorted(maps.Keys(refused)); !slices.Equal(got, want) {
		t.Errorf("ids taken after the restart %v; want those refused before the kill %v", got, want)
	}
	if got := slices.Sorted(maps.Values(taken)); !slices.Equal(got, keys) {
		t.Errorf("orders notified after the restart %v; want %v, once each", got, keys)
	}
	rc.mu.Lock()
	if rc.bad > 0 {
		t.Errorf("%d requests did not verify with the Standard Webhooks library", rc.bad)
	}
	t.Logf("%d deliveries, %d sent again after being taken (the receiver skipped them)", len(taken), rc.repeats)
	rc.mu.Unlock()
	waitForProc(t, "no delivery pending in the store", restarted, func() bool {
		m := scrapeMetrics(t, restarted.url()+"/metrics")
		n, ok := m[`baton_webhook_deliveries_pending{}`]
		return ok && n == 0
	})
	restarted.stop(t)
}

// waitForProc polls cond for up to a minute, failing with p's output.
func waitForProc(t *testing.T, what string, p *proc, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; %s said:\n%s", what, p.name, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
