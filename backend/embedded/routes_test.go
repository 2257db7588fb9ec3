package embedded

import (
	"context"
	"fmt"
	"testing"
)

// Publishers choose event types: the route cache keeps none that no group
// takes, and no more than maxRoutes of those that some group does.
func TestRouteCacheIsBounded(t *testing.T) {
	t.Parallel()
	b := open(t)
	ctx := context.Background()
	if _, err := b.Subscribe(ctx, "g", []string{"kept.*.v1"}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := b.Publish(ctx, msg(fmt.Sprintf("nobody.t%d.v1", i), fmt.Sprint("n", i))); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.RLock()
	cached := len(b.routes)
	b.mu.RUnlock()
	if cached != 0 {
		t.Errorf("%d types no group takes are cached, want 0", cached)
	}
	for i := range maxRoutes + 10 {
		if got := b.route(fmt.Sprintf("kept.t%d.v1", i)); len(got) != 1 {
			t.Fatalf("kept.t%d.v1 routes to %d groups, want 1", i, len(got))
		}
	}
	b.mu.RLock()
	cached = len(b.routes)
	b.mu.RUnlock()
	if cached > maxRoutes {
		t.Errorf("%d types cached, want at most %d", cached, maxRoutes)
	}
}
