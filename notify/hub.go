// Package notify tells the outside world what the coordinator sees: runs
// that completed, failed or were cancelled, starts refused as invalid, dead
// letters, the alerts of flows' Notify steps, and broken expectations.
//
// A Hub implements flow.Notifier. It hands each notification to the live
// subscribers (the API's server-sent-events stream, see ServeSSE) and to the
// configured webhooks, without ever making the caller wait for either:
//
//   - A subscriber has a buffered channel. One that falls a whole buffer
//     behind is dropped: its channel is closed and its stream ends, and the
//     client reconnects (the stream asks it to retry after 2s).
//   - A webhook's deliveries are kept in the store (Config.Store, the
//     webhook outbox): Notify writes one per webhook that wants the
//     notification before it returns, and the webhook's senders claim them
//     with a lease, so that several servers sharing the store do not post
//     the same one at once, and a restart sends what a crash interrupted.
//     Each request is a JSON POST signed with the Standard Webhooks scheme
//     (Sign, Verify). Network errors, timeouts, 5xx and 429 are retried
//     with exponential backoff and full jitter for Config.MaxAge (24h by
//     default); other statuses are given up at once. A delivery given up
//     is logged, counted as failed and deleted.
//
// Delivery to a webhook is at least once: a receiver that answered too late,
// or a server that crashed after the request and before it recorded the
// answer, sends a delivery again, with the same webhook-id. The delivery is
// written after the run transition that caused it, not in the same
// transaction: a crash between the two loses that notification.
//
// Shutdown: Stop ends the subscribers' streams, stops claiming deliveries,
// and waits for the requests under way until its context ends; what is left
// stays in the store for the next start, as do the deliveries of
// notifications that come while or after it stops. Stop the hub before waiting for an HTTP server to shut down, since
// a server waits for its open event streams.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Hub; the zero value of each field means its default.
type Config struct {
	Webhooks []Webhook
	// Store keeps the webhooks' deliveries until they are sent; required
	// with Webhooks. Every Baton store is a store.Deliveries.
	Store store.Deliveries
	// Logger receives delivery failures and drops; the default discards.
	Logger *slog.Logger
	// Retry is the webhooks' backoff: its zero Base means 1s and its zero
	// Cap 1h; MaxAttempts, when set, gives a delivery up after that many
	// attempts even within MaxAge.
	Retry baton.RetryPolicy
	// MaxAge is how long a delivery is retried after its notification;
	// the default is 24h.
	MaxAge time.Duration
	// Client sends the webhooks' requests; the default has a 10s timeout
	// and does not follow redirects (a 3xx is given up, like a 4xx). A
	// delivery is claimed for twice its timeout, at least 30s.
	Client *http.Client
	// Senders is the number of requests under way to each webhook at
	// most; the default is 4.
	Senders int
	// Buffer is the number of notifications a subscriber may fall behind
	// before it is dropped; the default is 256.
	Buffer int
	// Metrics, when set, is where the hub registers the counter of its
	// webhook deliveries (docs/observability.md); nil records none.
	Metrics prometheus.Registerer
}

// Webhook is an endpoint that receives notifications.
type Webhook struct {
	URL string // http or https
	// Secret signs the requests (webhook-signature); required. Give it in
	// the Standard Webhooks form, "whsec_" and the base64 of a random key
	// (openssl rand -base64 32), which receivers' libraries take as it is;
	// any other string is the key byte for byte.
	Secret string
	// Kinds are the notification kinds to send; empty means run.completed,
	// run.failed, dead_letter, expectation.broken and expectation.cleared.
	Kinds []string
}

// defaultKinds are the kinds a webhook receives when it names none.
var defaultKinds = []string{flow.RunCompleted, flow.RunFailed, flow.DeadLetter, flow.ExpectationBroken, flow.ExpectationCleared}

// knownKinds are the kinds a webhook may ask for.
var knownKinds = []string{flow.RunCompleted, flow.RunFailed, flow.RunCancelled, flow.InputInvalid, flow.DeadLetter, flow.Alert,
	flow.ExpectationBroken, flow.ExpectationCleared}

// Default values of Config.
const (
	defaultBase    = time.Second
	defaultCap     = time.Hour
	defaultMaxAge  = 24 * time.Hour
	defaultTimeout = 10 * time.Second
	defaultSenders = 4
	defaultBuffer  = 256
)

// Hub fans notifications out to live subscribers and to webhooks. Create
// it with New, Start it to send webhooks, Stop it to shut down.
type Hub struct {
	log     *slog.Logger
	store   store.Deliveries
	retry   baton.RetryPolicy
	maxAge  time.Duration
	lease   time.Duration
	client  *http.Client
	buffer  int
	workers int
	hooks   []*sender

	mu       sync.RWMutex
	subs     map[*subscription]struct{}
	started  bool
	stopping bool
	cancel   context.CancelFunc // ends the claims
	abort    context.CancelFunc // ends the requests under way

	wg       sync.WaitGroup // the senders and their requests
	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}

	sent, failed, dropped atomic.Int64
}

var _ flow.Notifier = (*Hub)(nil)

// New validates cfg and returns a hub that is not started: subscribers work
// at once, webhooks' deliveries are stored and wait for Start.
func New(cfg Config) (*Hub, error) {
	const op = "new notify hub"
	if cfg.Senders < 0 || cfg.Buffer < 0 || cfg.MaxAge < 0 {
		return nil, baton.Errorf(baton.Invalid, op, "negative Senders, Buffer or MaxAge")
	}
	if len(cfg.Webhooks) > 0 && cfg.Store == nil {
		return nil, baton.Errorf(baton.Invalid, op, "%w", errNoStore)
	}
	h := &Hub{
		log:     cfg.Logger,
		store:   cfg.Store,
		retry:   cfg.Retry,
		maxAge:  cfg.MaxAge,
		client:  cfg.Client,
		buffer:  orDefault(cfg.Buffer, defaultBuffer),
		workers: orDefault(cfg.Senders, defaultSenders),
		subs:    make(map[*subscription]struct{}),
		stopped: make(chan struct{}),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxAge == 0 {
		h.maxAge = defaultMaxAge
	}
	if h.retry.Base <= 0 {
		h.retry.Base = defaultBase
	}
	if h.retry.Cap <= 0 {
		h.retry.Cap = defaultCap
	}
	if h.client == nil {
		h.client = &http.Client{
			Timeout:       defaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	h.lease = max(minLease, 2*h.client.Timeout)
	for i, wh := range cfg.Webhooks {
		s, err := newSender(h, wh)
		if err != nil {
			return nil, baton.Errorf(baton.Invalid, op, "webhook %d: %w", i, err)
		}
		h.hooks = append(h.hooks, s)
	}
	if err := registerMetrics(cfg.Metrics, h); err != nil {
		return nil, fmt.Errorf("%s: metrics: %w", op, err)
	}
	return h, nil
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// newSender checks a webhook's configuration.
func newSender(h *Hub, wh Webhook) (*sender, error) {
	u, err := url.Parse(wh.URL)
	if err != nil {
		return nil, fmt.Errorf("url does not parse: %w", err)
	}
	name := redact(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: the scheme must be http or https", name)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q has no host", name)
	}
	if wh.Secret == "" {
		return nil, fmt.Errorf("%s: a secret is required to sign the requests", name)
	}
	secret, err := key(wh.Secret)
	if err != nil {
		return nil, fmt.Errorf("%s: secret: %w", name, err)
	}
	kinds := wh.Kinds
	if len(kinds) == 0 {
		kinds = defaultKinds
	}
	set := make(map[string]bool, len(kinds))
	for _, k := range kinds {
		if !slices.Contains(knownKinds, k) {
			return nil, fmt.Errorf("%s: unknown notification kind %q (known: %s)", name, k, strings.Join(knownKinds, ", "))
		}
		set[k] = true
	}
	return &sender{
		hub:    h,
		key:    webhookKey(u.String()),
		url:    u.String(),
		name:   name,
		secret: secret,
		kinds:  set,
		slots:  make(chan struct{}, h.workers),
		wake:   make(chan struct{}, 1),
	}, nil
}

// redact names an endpoint in logs and errors without its credentials or
// query, which often carries a token.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "", false
		return c.String() + "?…"
	}
	return c.String()
}

// Start starts the webhooks' senders. Values of ctx reach the requests; its
// cancellation does not stop the hub: Stop does.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.stopping:
		return baton.Errorf(baton.Conflict, "start notify hub", "hub stopped")
	case h.started:
		return baton.Errorf(baton.Conflict, "start notify hub", "hub already started")
	}
	h.started = true
	posts, abort := context.WithCancel(context.WithoutCancel(ctx))
	claims, cancel := context.WithCancel(posts)
	h.cancel, h.abort = cancel, abort
	for _, s := range h.hooks {
		h.wg.Go(func() { s.run(claims, posts) })
	}
	return nil
}

// Stop closes the subscribers' channels (which ends their streams), stops
// claiming webhook deliveries, and waits for the requests under way until
// ctx ends; then it aborts them and releases their deliveries, which stay
// in the store for the next start (or another server) to send. It is
// idempotent: later calls wait for the first and return its result.
func (h *Hub) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() {
		h.stopErr = h.stop(ctx)
		close(h.stopped)
	})
	return h.stopErr
}

func (h *Hub) stop(ctx context.Context) error {
	h.mu.Lock()
	h.stopping = true
	started := h.started
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
	h.mu.Unlock()
	if !started {
		return nil
	}
	h.cancel()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.abort()
		<-done
		h.log.Warn("notify: webhook requests aborted at stop; their deliveries stay in the store")
		return baton.Errorf(baton.Unavailable, "stop notify hub", "webhook requests aborted, their deliveries kept for the next start: %w", ctx.Err())
	}
}

// Stopped is closed when Stop has finished.
func (h *Hub) Stopped() <-chan struct{} { return h.stopped }

// Stats counts webhook deliveries (one per notification and webhook that
// wants it) since New: sent with a 2xx answer, failed for good (given up,
// or out of attempts or time), and dropped (never stored: the store
// refused the write, or the notification did not encode). Subscribers
// dropped for being slow are logged, not counted here.
func (h *Hub) Stats() (sent, failed, dropped int64) {
	return h.sent.Load(), h.failed.Load(), h.dropped.Load()
}

// Notify hands n, trimmed (flow.Notification.Trim), to the subscribers and
// stores a delivery for each webhook that wants its kind; it waits for that
// store write (at most 5s), not for the subscribers or the webhooks. A zero
// n.Time is set to now.
func (h *Hub) Notify(ctx context.Context, n flow.Notification) {
	n = n.Trim() // a refused 1 MiB start is not sent whole to every subscriber
	if n.Time.IsZero() {
		n.Time = time.Now().UTC()
	}
	var slow []*subscription
	h.mu.RLock()
	for s := range h.subs {
		if !s.wants(n.Kind) {
			continue
		}
		select {
		case s.ch <- n:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		if h.remove(s) {
			h.log.WarnContext(ctx, "notify: subscriber dropped: it fell a whole buffer behind", "buffer", h.buffer, "kind", n.Kind)
		}
	}
	h.queue(ctx, n)
}

// queue stores a delivery of n for each webhook that wants it, and wakes
// their senders. A hub that is stopping still stores them: the next start
// sends them.
func (h *Hub) queue(ctx context.Context, n flow.Notification) {
	var (
		body  []byte
		ds    []store.Delivery
		woken []*sender
	)
	for _, s := range h.hooks {
		if !s.kinds[n.Kind] {
			continue
		}
		if body == nil {
			var err error
			if body, err = json.Marshal(n); err != nil {
				h.dropped.Add(1)
				h.log.ErrorContext(ctx, "notify: webhook notification not encoded", "webhook", s.name, "kind", n.Kind, "err", err)
				continue
			}
		}
		now := time.Now().UTC()
		ds = append(ds, store.Delivery{ID: event.NewID(), Webhook: s.key, Kind: n.Kind, Body: body, Created: now, Next: now})
		woken = append(woken, s)
	}
	if len(ds) == 0 {
		return
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := h.store.AddDeliveries(c, ds...); err != nil {
		h.dropped.Add(int64(len(ds)))
		h.log.ErrorContext(ctx, "notify: webhook notification dropped: not stored", "kind", n.Kind, "webhooks", len(ds), "err", err)
		return
	}
	for _, s := range woken {
		s.poke()
	}
}

// subscription is one live subscriber.
type subscription struct {
	ch    chan flow.Notification
	kinds map[string]bool // nil: all
}

func (s *subscription) wants(kind string) bool { return s.kinds == nil || s.kinds[kind] }

// Subscribe returns a channel of the notifications of the given kinds (all
// when none are given) and a function that ends the subscription and closes
// the channel. The hub closes the channel itself when it stops or when the
// subscriber falls Config.Buffer notifications behind; a closed channel
// means the subscription is over. Subscribing to a stopped hub returns a
// closed channel.
func (h *Hub) Subscribe(kinds ...string) (ch <-chan flow.Notification, cancel func()) {
	s := &subscription{ch: make(chan flow.Notification, h.buffer)}
	if len(kinds) > 0 {
		s.kinds = make(map[string]bool, len(kinds))
		for _, k := range kinds {
			s.kinds[k] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		close(s.ch)
		return s.ch, func() {}
	}
	h.subs[s] = struct{}{}
	return s.ch, func() { h.remove(s) }
}

// remove ends s if it has not ended yet, and reports whether it did.
func (h *Hub) remove(s *subscription) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; !ok {
		return false
	}
	delete(h.subs, s)
	close(s.ch)
	return true
}

// subscribers counts the live subscriptions, for tests.
func (h *Hub) subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}
