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
//   - A webhook has a bounded queue and a small pool of sender goroutines.
//     A notification that finds the queue full is dropped, logged and
//     counted. Each request is a JSON POST signed with HMAC-SHA256 (Sign,
//     Verify); network errors, timeouts, 5xx and 429 are retried with
//     exponential backoff and full jitter, other statuses are given up at
//     once. Retries wait in the background, not in the queue.
//
// Delivery to a webhook is at least once while the hub runs: a receiver
// that answered too late may see a notification again, with the same
// Baton-Delivery id. Notifications are not persisted; those still queued
// when Stop's deadline passes are lost (and counted as dropped).
//
// Shutdown: Stop stops taking notifications and ends the subscribers'
// streams, then delivers what the webhooks' queues hold until its context
// ends. Stop the hub before waiting for an HTTP server to shut down, since a
// server waits for its open event streams.
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
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Hub; the zero value of each field means its default.
type Config struct {
	Webhooks []Webhook
	// Logger receives delivery failures and drops; the default discards.
	Logger *slog.Logger
	// Retry is the webhooks' retry policy; its zero fields mean 6 attempts,
	// a base of 500ms and a cap of 30s.
	Retry baton.RetryPolicy
	// Client sends the webhooks' requests; the default has a 10s timeout
	// and does not follow redirects (a 3xx is given up, like a 4xx).
	Client *http.Client
	// QueueSize bounds the deliveries each webhook holds, queued or waiting
	// to be retried; the default is 1024.
	QueueSize int
	// Senders is the number of goroutines posting to each webhook; the
	// default is 4.
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
	// Secret is the HMAC-SHA256 key of the Baton-Signature header; required.
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
	defaultAttempts  = 6
	defaultBase      = 500 * time.Millisecond
	defaultCap       = 30 * time.Second
	defaultTimeout   = 10 * time.Second
	defaultQueueSize = 1024
	defaultSenders   = 4
	defaultBuffer    = 256
)

// Hub fans notifications out to live subscribers and to webhooks. Create
// it with New, Start it to send webhooks, Stop it to shut down.
type Hub struct {
	log     *slog.Logger
	retry   baton.RetryPolicy
	client  *http.Client
	buffer  int
	workers int
	hooks   []*sender

	mu       sync.RWMutex
	subs     map[*subscription]struct{}
	started  bool
	stopping bool
	cancel   context.CancelFunc

	wg       sync.WaitGroup // the senders and the retries waiting
	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}

	sent, failed, dropped atomic.Int64
}

var _ flow.Notifier = (*Hub)(nil)

// New validates cfg and returns a hub that is not started: subscribers work
// at once, webhooks are queued until Start.
func New(cfg Config) (*Hub, error) {
	const op = "new notify hub"
	if cfg.QueueSize < 0 || cfg.Senders < 0 || cfg.Buffer < 0 {
		return nil, baton.Errorf(baton.Invalid, op, "negative QueueSize, Senders or Buffer")
	}
	h := &Hub{
		log:     cfg.Logger,
		retry:   cfg.Retry,
		client:  cfg.Client,
		buffer:  orDefault(cfg.Buffer, defaultBuffer),
		workers: orDefault(cfg.Senders, defaultSenders),
		subs:    make(map[*subscription]struct{}),
		stopped: make(chan struct{}),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.retry.MaxAttempts <= 0 {
		h.retry.MaxAttempts = defaultAttempts
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
	queue := orDefault(cfg.QueueSize, defaultQueueSize)
	for i, wh := range cfg.Webhooks {
		s, err := newSender(h, wh, queue)
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
func newSender(h *Hub, wh Webhook, queue int) (*sender, error) {
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
		hub:     h,
		url:     u.String(),
		name:    name,
		secret:  []byte(wh.Secret),
		kinds:   set,
		queue:   make(chan *delivery, queue),
		drained: make(chan struct{}),
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
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel
	for _, s := range h.hooks {
		for range h.workers {
			h.wg.Go(func() { s.run(runCtx) })
		}
	}
	return nil
}

// Stop stops taking notifications, closes the subscribers' channels (which
// ends their streams), and delivers what the webhooks hold, retries
// included, until ctx ends; then it aborts the requests under way and
// counts what is left as dropped. It is idempotent: later calls wait for
// the first and return its result.
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
	for _, s := range h.hooks {
		s.close()
	}
	var err error
	if started {
	wait:
		for _, s := range h.hooks {
			select {
			case <-s.drained:
			case <-ctx.Done():
				err = ctx.Err()
				break wait
			}
		}
		h.cancel()
		h.wg.Wait()
	}
	var left int64
	for _, s := range h.hooks {
		left += int64(s.left())
	}
	if left == 0 {
		return nil
	}
	h.dropped.Add(left)
	h.log.Error("notify: webhook deliveries dropped at stop", "count", left, "started", started)
	if !started {
		return baton.Errorf(baton.Unavailable, "stop notify hub", "never started: %d webhook deliveries dropped", left)
	}
	return baton.Errorf(baton.Unavailable, "stop notify hub", "%d webhook deliveries dropped: %w", left, err)
}

// Stopped is closed when Stop has finished.
func (h *Hub) Stopped() <-chan struct{} { return h.stopped }

// Stats counts webhook deliveries (one per notification and webhook that
// wants it): sent with a 2xx answer, failed for good (given up or out of
// attempts), and dropped (the queue was full, the hub was stopping, or
// Stop's deadline passed). Subscribers dropped for being slow are logged,
// not counted here.
func (h *Hub) Stats() (sent, failed, dropped int64) {
	return h.sent.Load(), h.failed.Load(), h.dropped.Load()
}

// Notify hands n, trimmed (flow.Notification.Trim), to the subscribers and
// queues it for the webhooks that want its kind; it does not wait for
// either. A zero n.Time is set to now.
func (h *Hub) Notify(ctx context.Context, n flow.Notification) {
	n = n.Trim() // a refused 1 MiB start is not sent whole to every subscriber
	if n.Time.IsZero() {
		n.Time = time.Now().UTC()
	}
	var slow []*subscription
	h.mu.RLock()
	stopping := h.stopping
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
	h.queue(ctx, n, stopping)
}

// queue hands n to the webhooks that want it.
func (h *Hub) queue(ctx context.Context, n flow.Notification, stopping bool) {
	var body []byte
	for _, s := range h.hooks {
		if !s.kinds[n.Kind] {
			continue
		}
		if stopping {
			h.dropped.Add(1)
			h.log.ErrorContext(ctx, "notify: webhook notification dropped: hub stopping", "webhook", s.name, "kind", n.Kind)
			continue
		}
		if body == nil {
			var err error
			if body, err = json.Marshal(n); err != nil {
				h.failed.Add(1)
				h.log.ErrorContext(ctx, "notify: webhook notification not encoded", "webhook", s.name, "kind", n.Kind, "err", err)
				continue
			}
		}
		d := &delivery{id: event.NewID(), kind: n.Kind, body: body}
		if err := s.enqueue(d); err != nil {
			h.dropped.Add(1)
			h.log.ErrorContext(ctx, "notify: webhook notification dropped", "webhook", s.name, "kind", n.Kind, "delivery", d.id, "err", err)
		}
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
