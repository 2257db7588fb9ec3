package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
)

// gated is the embedded backend with its asynchronous commits held until
// open is closed; fail makes the first n of them fail without writing
// anything, as a commit whose write failed does.
type gated struct {
	*embedded.Backend
	open  chan struct{}
	fail  atomic.Int64
	began atomic.Int64
}

func (g *gated) CommitAsync(ctx context.Context, c bus.Commit) func(context.Context) error {
	g.began.Add(1)
	return func(ctx context.Context) error {
		<-g.open
		if g.fail.Add(-1) >= 0 {
			return baton.Errorf(baton.Unavailable, "commit", "injected: the write failed")
		}
		return g.Backend.Commit(ctx, c)
	}
}

func (g *gated) CommitStore() bus.Store { return g.Backend }

// A worker on a transport that commits asynchronously handles its next
// deliveries while the commits of earlier ones wait, and counts each only
// once its commit is made.
func TestWorkerHandlesWhileCommitsWait(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	g := &gated{Backend: b, open: make(chan struct{})}
	var mu sync.Mutex
	calls := map[string]int{}
	rt := run(t, b, bus.Config{Transport: g, Concurrency: 1}, baton.Service{Name: "billing", Handlers: []baton.Handler{{
		Type: "order.placed.v1",
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			mu.Lock()
			calls[e.ID]++
			mu.Unlock()
			return nil, nil
		},
	}}})
	const n = 3
	for i := range n {
		publish(t, rt, orderEvent(t, fmt.Sprintf("o-%d", i), i))
	}
	eventually(t, fmt.Sprintf("the one worker to have handled all %d events with no commit made", n), func() (bool, string) {
		return g.began.Load() == n, fmt.Sprintf("%d commits begun", g.began.Load())
	})
	if h := rt.Stats().Handled(); h != 0 {
		t.Fatalf("%d events counted as handled before any commit was made", h)
	}
	close(g.open)
	eventually(t, fmt.Sprintf("%d events handled", n), func() (bool, string) {
		return rt.Stats().Handled() == n, fmt.Sprintf("%d", rt.Stats().Handled())
	})
	mu.Lock()
	defer mu.Unlock()
	for id, c := range calls {
		if c != 1 {
			t.Errorf("handler called %d times for %s, want once", c, id)
		}
	}
}

// A commit that fails under way is made again before the delivery is
// counted: the event is handled once and its settlement is not lost.
func TestFailedAsyncCommitIsMadeAgain(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	g := &gated{Backend: b, open: make(chan struct{})}
	close(g.open)
	g.fail.Store(1)
	var calls atomic.Int64
	rt := run(t, b, bus.Config{Transport: g, Concurrency: 1}, baton.Service{Name: "billing", Handlers: []baton.Handler{{
		Type: "order.placed.v1",
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			calls.Add(1)
			return nil, nil
		},
	}}})
	publish(t, rt, orderEvent(t, "o-1", 1))
	eventually(t, "the event handled", func() (bool, string) {
		return rt.Stats().Handled() == 1, fmt.Sprintf("%d", rt.Stats().Handled())
	})
	if c := calls.Load(); c != 1 {
		t.Errorf("handler called %d times, want once", c)
	}
	if err := b.Commit(context.Background(), bus.Commit{Group: "billing", Handled: "o-1"}); !errors.Is(err, bus.ErrDuplicate) {
		t.Errorf("the inbox does not hold o-1 after the commit was made again: %v", err)
	}
	backlog, err := b.Backlog(context.Background(), "billing")
	if err != nil || backlog != 0 {
		t.Errorf("backlog %d (%v), want the delivery settled", backlog, err)
	}
}
