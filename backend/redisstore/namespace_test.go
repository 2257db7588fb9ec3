package redisstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/store"
)

// Groups finds the groups of the journal and the dead letters, and
// DeleteNamespace deletes every key of the prefix, and no other.
func TestDeleteNamespace(t *testing.T) {
	s, prefix := openPrefixed(t)
	other, otherPrefix := openPrefixed(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, st := range []*redisstore.Store{s, other} {
		if err := st.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "o-1", Outcome: store.Handled, EventID: "e-1", EventType: "order.placed.v1", Group: "payment"}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddDead(ctx, store.DeadLetter{Group: "audit", Type: "order.placed.v1", Body: []byte(`{}`), Reason: "test", Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkSeen(ctx, "payment", "e-1"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := redisstore.Config{URL: redisURL(), Prefix: prefix}
	groups, err := redisstore.Groups(ctx, cfg)
	if err != nil || !slices.Equal(groups, []string{"audit", "payment"}) {
		t.Fatalf("groups %v, %v; want [audit payment]", groups, err)
	}

	n, err := redisstore.DeleteNamespace(ctx, cfg)
	if err != nil || n == 0 {
		t.Fatalf("delete: %d keys, %v; want some deleted", n, err)
	}
	count := func(p string) int {
		opt, err := redis.ParseURL(redisURL())
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		keys, err := rdb.Keys(ctx, p+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if left := count(prefix); left != 0 {
		t.Errorf("%d keys of %s left after the delete", left, prefix)
	}
	if kept := count(otherPrefix); kept == 0 {
		t.Errorf("the delete of %s took the keys of %s too", prefix, otherPrefix)
	}
	if n, err := redisstore.DeleteNamespace(ctx, cfg); err != nil || n != 0 {
		t.Errorf("second delete: %d, %v; want nothing deleted", n, err)
	}
}
