package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Webhook request headers.
const (
	HeaderSignature = "Baton-Signature" // t=<unix>,v1=<hex hmac-sha256>
	HeaderEvent     = "Baton-Event"     // the notification's kind
	HeaderDelivery  = "Baton-Delivery"  // unique per notification and webhook, the same across retries
)

var (
	errQueueFull = errors.New("queue full")
	errStopping  = errors.New("hub stopping")
)

// delivery is one notification on its way to one webhook.
type delivery struct {
	id       string
	kind     string
	body     []byte
	attempts int // made so far
}

// sender posts to one webhook. It owns at most cap(queue) deliveries at a
// time, queued, being posted or waiting to be retried, so that putting one
// in the queue never blocks.
type sender struct {
	hub    *Hub
	url    string
	name   string // url without credentials or query, for logs
	secret []byte
	kinds  map[string]bool
	queue  chan *delivery

	mu      sync.Mutex
	pending int
	closing bool
	drained chan struct{} // closed when closing and nothing is pending
}

func (s *sender) enqueue(d *delivery) error {
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return errStopping
	case s.pending >= cap(s.queue):
		s.mu.Unlock()
		return fmt.Errorf("%w (%d deliveries held)", errQueueFull, cap(s.queue))
	}
	s.pending++
	s.mu.Unlock()
	s.queue <- d
	return nil
}

// finish releases a delivery that was sent or given up.
func (s *sender) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
	if s.closing && s.pending == 0 {
		close(s.drained)
	}
}

// close stops taking deliveries; drained closes once those held are done.
func (s *sender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if s.pending == 0 {
		close(s.drained)
	}
}

// left is the number of deliveries still held.
func (s *sender) left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

func (s *sender) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-s.queue:
			s.deliver(ctx, d)
		}
	}
}

// deliver makes one attempt and settles d: sent, failed, or scheduled for
// another attempt. When ctx ends under it, d stays held for Stop to count.
func (s *sender) deliver(ctx context.Context, d *delivery) {
	h := s.hub
	d.attempts++
	retry, after, err := s.post(ctx, d)
	log := h.log.With("webhook", s.name, "kind", d.kind, "delivery", d.id, "attempt", d.attempts)
	switch {
	case err == nil:
		h.sent.Add(1)
		s.finish()
		log.Debug("notify: webhook delivered")
	case ctx.Err() != nil:
		// Stop's deadline passed: Stop counts d as dropped.
	case !retry:
		h.failed.Add(1)
		s.finish()
		log.Error("notify: webhook delivery given up", "err", err)
	case d.attempts >= h.retry.MaxAttempts:
		h.failed.Add(1)
		s.finish()
		log.Error("notify: webhook delivery failed: out of attempts", "err", err)
	default:
		wait := h.retry.Backoff(d.attempts, rand.Float64)
		if after > wait {
			wait = min(after, h.retry.Cap)
		}
		log.Warn("notify: webhook delivery failed; retrying", "err", err, "in", wait)
		// The delivery waits here, not in the queue, so that one slow
		// endpoint's retries do not hold up its other deliveries. It is
		// still held, so the queue has room for it.
		h.wg.Go(func() {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
				s.queue <- d
			case <-ctx.Done():
			}
		})
	}
}

// post makes one request. It reports whether a failure may be retried, and
// the delay the endpoint asked for with Retry-After, if any.
func (s *sender) post(ctx context.Context, d *delivery) (retry bool, after time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(d.body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Baton-Webhook/1")
	req.Header.Set(HeaderEvent, d.kind)
	req.Header.Set(HeaderDelivery, d.id)
	// Signed at each attempt, so that a retry after a long backoff is not
	// refused as a replay.
	req.Header.Set(HeaderSignature, Sign(s.secret, d.body, time.Now()))
	resp, err := s.hub.client.Do(req)
	if err != nil {
		return true, 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, 0, nil
	case c == http.StatusTooManyRequests || c >= 500:
		return true, retryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("answered %s", resp.Status)
	case c >= 300 && c < 400:
		return false, 0, fmt.Errorf("answered %s (redirects are not followed)", resp.Status)
	default:
		return false, 0, fmt.Errorf("answered %s", resp.Status)
	}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
