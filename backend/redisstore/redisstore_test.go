package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/conformance"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

const startRedis = `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`

func redisURL() string {
	if u := os.Getenv("BATON_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// rawClient is a plain client of the test server, closed when t ends.
func rawClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// openStore opens a store on its own key prefix, deleted when the test ends.
// Without a Redis server the test fails in CI and is skipped elsewhere.
func openStore(t testing.TB) *redisstore.Store {
	t.Helper()
	s, _ := openPrefixed(t)
	return s
}

func openPrefixed(t testing.TB) (*redisstore.Store, string) {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	prefix := "batontest:" + hex.EncodeToString(b[:]) + ":"
	err := reachable()
	var s *redisstore.Store
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A small dead-letter cap, so that the suite can fill it.
		s, err = redisstore.Open(ctx, redisstore.Config{URL: redisURL(), Prefix: prefix, InboxRetention: time.Hour,
			Retention: store.Retention{DeadCap: 20}})
	}
	if err != nil {
		msg := fmt.Sprintf("Redis is not available (%v); start it with: %s (or set BATON_REDIS_URL)", err, startRedis)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		defer s.Close()
		if err := deletePrefix(prefix); err != nil {
			t.Errorf("delete the keys of %s: %v", prefix, err)
		}
	})
	return s, prefix
}

// reachable tries the server once per test binary, so that a machine
// without Redis skips every case at once rather than one timeout each.
var reachable = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL()})
	if err != nil {
		return err
	}
	return s.Close()
})

func deletePrefix(prefix string) error {
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := rdb.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Del(ctx, batch...).Err()
	}
	return nil
}

func TestStore(t *testing.T) {
	conformance.TestStore(t, conformance.Features{}, func(t *testing.T) store.Store { return openStore(t) })
}

func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = redisstore.Open(t.Context(), redisstore.Config{URL: "redis://" + addr + "/0"})
	if err == nil {
		t.Fatalf("Open of %s, where nothing listens, succeeded", addr)
	}
	if code := baton.ErrorCode(err); code != baton.Unavailable {
		t.Errorf("Open of a closed port: code %q, want %q (%v)", code, baton.Unavailable, err)
	}
	if want := "cannot reach Redis at " + addr + ": "; !strings.Contains(err.Error(), want) {
		t.Errorf("Open of a closed port: %q; want it to say %q and why", err, want)
	}
}

func TestOpenInvalid(t *testing.T) {
	for _, url := range []string{"", "http://127.0.0.1:6379/0", "redis://127.0.0.1:6379/notadb"} {
		_, err := redisstore.Open(t.Context(), redisstore.Config{URL: url})
		if code := baton.ErrorCode(err); code != baton.Invalid {
			t.Errorf("Open(%q): %v (code %q); want an error with code %q", url, err, code, baton.Invalid)
		}
	}
}

// TestRunIndexesFollowStatus checks what the suite cannot see from outside
// in one case: a run leaves its old status's index when saved, so listing by
// status stays exact after many transitions.
func TestRunIndexesFollowStatus(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	r, _, err := s.CreateRun(ctx, store.Run{ID: "r1", Flow: "f", Key: "k", Status: store.RunPending, Created: at, Updated: at}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []store.RunStatus{store.RunRunning, store.RunCompensating, store.RunRunning, store.RunFailed} {
		r.Status = st
		if r, err = s.SaveRun(ctx, r, nil); err != nil {
			t.Fatalf("save %s: %v", st, err)
		}
	}
	for _, st := range []store.RunStatus{store.RunPending, store.RunRunning, store.RunCompensating, store.RunFailed} {
		l, err := s.ListRuns(ctx, store.RunQuery{Status: st})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if st == store.RunFailed {
			want = 1
		}
		if len(l) != want {
			t.Errorf("ListRuns status %s: %d runs, want %d", st, len(l), want)
		}
	}
	moved := r
	moved.Flow = "other"
	if _, err := s.SaveRun(ctx, moved, nil); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("SaveRun that changes the flow: %v; want an invalid error", err)
	}
}

// TestErrorCodes: a key of the wrong type (a bug, or another program
// writing under the prefix) is Internal; a closed store is Unavailable.
func TestErrorCodes(t *testing.T) {
	s, prefix := openPrefixed(t)
	ctx := t.Context()
	rdb := rawClient(t)
	if err := rdb.Set(ctx, prefix+"schedules", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Schedule(ctx, "x")
	if code := baton.ErrorCode(err); code != baton.Internal {
		t.Errorf("Schedule with a string where the hash of schedules belongs: %v (code %q); want code %q", err, code, baton.Internal)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	_, err = s.Run(ctx, "r1")
	if code := baton.ErrorCode(err); code != baton.Unavailable {
		t.Errorf("Run on a closed store: %v (code %q); want code %q", err, code, baton.Unavailable)
	}
}

func BenchmarkSaveRun(b *testing.B) {
	s := openStore(b)
	ctx := b.Context()
	at := time.Now().UTC()
	r, _, err := s.CreateRun(ctx, store.Run{ID: "bench", Flow: "f", Key: "k", Status: store.RunRunning, Created: at, Updated: at,
		Data: []byte(`{"charge":{"id":"ch_1"}}`), Steps: map[string]*store.StepState{"charge": {Status: store.StepRunning, Attempts: 1, Started: at}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	out := []store.Outbound{{Group: "billing", Type: "charge.requested.v1", ID: "x", Body: []byte(`{"id":"x"}`)}}
	for b.Loop() {
		r.Wake = r.Wake.Add(time.Second)
		if r, err = s.SaveRun(ctx, r, out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarkSeen(b *testing.B) {
	s := openStore(b)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		i++
		if err := s.MarkSeen(ctx, "billing", fmt.Sprint("ev-", i)); err != nil {
			b.Fatal(err)
		}
	}
}
