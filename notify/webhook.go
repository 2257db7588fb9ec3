package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/batonhq/baton/store"
)

// How the senders use the store. The lease covers a request's timeout
// twice over, so that a claim does not lapse under a request still under
// way (which would let another server post the same delivery at once).
const (
	pollInterval = time.Second      // how often a sender looks for due deliveries
	minLease     = 30 * time.Second // the shortest claim
	storeTimeout = 5 * time.Second  // for one store call that settles a delivery
)

// sender posts one webhook's deliveries, which it claims from the store.
type sender struct {
	hub    *Hub
	key    string // the endpoint's key in the store: a hash of its URL
	url    string
	name   string // url without credentials or query, for logs
	secret []byte
	kinds  map[string]bool
	slots  chan struct{} // a value per post under way
	wake   chan struct{} // a delivery was added or a post ended
}

// webhookKey names an endpoint in the store without its credentials.
func webhookKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:8])
}

func (s *sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run claims due deliveries and posts them, cap(slots) at a time, until
// claims ends; posts is the requests' context, which Stop ends later.
func (s *sender) run(claims, posts context.Context) {
	h := s.hub
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		// Only run adds to slots, so free is at least what it says.
		if free := cap(s.slots) - len(s.slots); free > 0 {
			ds, err := h.store.ClaimDeliveries(claims, s.key, time.Now(), free, h.lease)
			if err != nil && claims.Err() == nil {
				h.log.Warn("notify: webhook deliveries not claimed; trying again", "webhook", s.name, "err", err, "in", pollInterval)
			}
			for _, d := range ds {
				s.slots <- struct{}{}
				h.wg.Go(func() {
					defer func() {
						<-s.slots
						s.poke()
					}()
					s.deliver(posts, d)
				})
			}
			if err == nil && len(ds) == free {
				continue // there may be more due
			}
		}
		select {
		case <-claims.Done():
			return
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// deliver makes one attempt and settles d in the store: deleted when sent
// or given up, rescheduled otherwise. When ctx ends under it (Stop's
// deadline), d is released for the next sender to claim at once.
func (s *sender) deliver(ctx context.Context, d store.Delivery) {
	h := s.hub
	retry, after, err := s.post(ctx, d)
	now := time.Now()
	settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	log := h.log.With("webhook", s.name, "kind", d.Kind, "delivery", d.ID, "attempt", d.Attempts+1)
	var serr error
	switch {
	case err == nil:
		// Counted once settled, so that a reader of the counts sees the
		// store settled too.
		serr = h.store.DeleteDelivery(settle, d.ID)
		h.sent.Add(1)
		log.Debug("notify: webhook delivered")
	case ctx.Err() != nil:
		d.Next = now
		serr = h.store.RetryDelivery(settle, d)
	case !retry:
		serr = h.store.DeleteDelivery(settle, d.ID)
		h.failed.Add(1)
		log.Error("notify: webhook delivery given up", "err", err)
	default:
		d.Attempts++
		wait := h.retry.Backoff(d.Attempts, rand.Float64)
		if after > wait {
			wait = min(after, h.retry.Cap)
		}
		d.Next, d.LastError = now.Add(wait), err.Error()
		if h.retry.MaxAttempts > 0 && d.Attempts >= h.retry.MaxAttempts || d.Next.Sub(d.Created) > h.maxAge {
			serr = h.store.DeleteDelivery(settle, d.ID)
			h.failed.Add(1)
			log.Error("notify: webhook delivery given up: out of attempts or time", "err", err,
				"attempts", d.Attempts, "since", now.Sub(d.Created).Round(time.Second))
			break
		}
		serr = h.store.RetryDelivery(settle, d)
		log.Warn("notify: webhook delivery failed; retrying", "err", err, "in", wait)
	}
	if serr != nil {
		// The claim lapses and the delivery is claimed again: sent twice
		// at worst, with the same id.
		log.Error("notify: webhook delivery not settled in the store; it will be claimed again when its claim lapses",
			"err", serr, "lease", h.lease)
	}
}

// post makes one request. It reports whether a failure may be retried, and
// the delay the endpoint asked for with Retry-After, if any.
func (s *sender) post(ctx context.Context, d store.Delivery) (retry bool, after time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(d.Body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Baton-Webhook/2")
	req.Header.Set(HeaderEvent, d.Kind)
	// Signed at each attempt, so that a retry after a long backoff is not
	// refused as a replay; the id is signed too, so that a receiver can
	// trust it to dedupe.
	ts := time.Now().Unix()
	req.Header.Set(HeaderID, d.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sign(s.secret, d.ID, ts, d.Body))
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

var errNoStore = errors.New("webhooks need Config.Store, a store.Deliveries (every Baton store is one): deliveries are kept there until they are sent")
