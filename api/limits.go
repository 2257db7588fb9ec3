package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// Defaults of the limits of Config.
const (
	// DefaultMaxStreams is how many event streams and long polls a server
	// holds open at once.
	DefaultMaxStreams = 256
	// DefaultMaxStreamsPerToken is how many of them one token may hold.
	DefaultMaxStreamsPerToken = 16
)

// streamLimit counts the requests held open (event streams, long polls),
// in all and per token.
type streamLimit struct {
	max, perToken int

	mu      sync.Mutex
	open    int
	byToken map[int]int
}

func newStreamLimit(max, perToken int) *streamLimit {
	return &streamLimit{max: max, perToken: perToken, byToken: map[int]int{}}
}

// acquire takes a place for a held request of c, or says why there is
// none; release gives it back. Without tokens only the server's limit
// applies.
func (l *streamLimit) acquire(op string, c caller) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return nil, baton.Errorf(TooManyRequests, op,
			"this server already holds its limit of %d event streams and long polls open; close one, or try again later", l.max)
	case c.token >= 0 && l.byToken[c.token] >= l.perToken:
		return nil, baton.Errorf(TooManyRequests, op,
			"this token already holds its limit of %d event streams and long polls open; close one first", l.perToken)
	}
	l.open++
	if c.token >= 0 {
		l.byToken[c.token]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.open--
			if c.token >= 0 {
				if l.byToken[c.token]--; l.byToken[c.token] == 0 {
					delete(l.byToken, c.token)
				}
			}
		})
	}, nil
}

// hold takes a place for r, answering 429 (with Retry-After) when there
// is none.
func (h *handler) hold(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, err := h.streams.acquire(r.Method+" "+r.URL.Path, callerOf(r.Context()))
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		h.reject(w, r, err)
		return nil, false
	}
	return release, true
}

// retryAfter is the Retry-After, in seconds, of a request over a limit.
const retryAfter = 5

// journalWatch tells long-polling journal requests when the journal has
// grown. However many wait, one goroutine reads the store, every
// pollEvery, and only while some request waits: it asks whether there is an
// entry after the smallest sequence number waited after, and wakes every
// waiter when there is; each then reads its own page once. The journal
// may grow in another process (a shared store), so it is read rather than
// told.
type journalWatch struct {
	store Store

	mu      sync.Mutex
	waiters map[*journalWaiter]struct{}
	polling bool
}

type journalWaiter struct {
	after uint64
	wake  chan struct{} // closed when there may be entries after after
}

// wait returns a channel closed when the journal may hold an entry after
// after, and a function that stops waiting.
func (j *journalWatch) wait(after uint64) (<-chan struct{}, func()) {
	jw := &journalWaiter{after: after, wake: make(chan struct{})}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.waiters[jw] = struct{}{}
	if !j.polling {
		j.polling = true
		go j.poll()
	}
	return jw.wake, func() {
		j.mu.Lock()
		defer j.mu.Unlock()
		delete(j.waiters, jw)
	}
}

// poll runs while there are waiters.
func (j *journalWatch) poll() {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for range tick.C {
		j.mu.Lock()
		if len(j.waiters) == 0 {
			j.polling = false
			j.mu.Unlock()
			return
		}
		low := ^uint64(0)
		for w := range j.waiters {
			low = min(low, w.after)
		}
		j.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		entries, err := j.store.Since(ctx, low, 1)
		cancel()
		if err != nil || len(entries) == 0 {
			// A store that fails wakes nobody: the waiters read it
			// themselves when their wait ends.
			continue
		}
		j.mu.Lock()
		for w := range j.waiters {
			if w.after < entries[0].Seq {
				close(w.wake)
				delete(j.waiters, w)
			}
		}
		j.mu.Unlock()
	}
}
