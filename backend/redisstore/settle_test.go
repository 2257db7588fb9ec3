package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// TestConcurrentSettles: Settles written together each mark their inbox and
// get consecutive Seqs, in order, none shared with another Settle.
func TestConcurrentSettles(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	const n = 400
	entries := make([][]store.Entry, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		group := fmt.Sprint("g", i%3)
		for j := range i % 4 { // 0 to 3 entries
			entries[i] = append(entries[i], store.Entry{Time: time.Now().UTC(), CorrelationID: fmt.Sprint("c", i),
				Outcome: store.Handled, EventID: fmt.Sprint("e", i, ".", j), Group: group})
		}
		wg.Go(func() { errs[i] = s.Settle(ctx, group, fmt.Sprint("e", i), entries[i]...) })
	}
	wg.Wait()
	owner := map[uint64]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Settle %d: %v", i, errs[i])
		}
		seen, err := s.Seen(ctx, fmt.Sprint("g", i%3), fmt.Sprint("e", i))
		if err != nil || !seen {
			t.Errorf("Seen of Settle %d = %v, %v; want true", i, seen, err)
		}
		for j, e := range entries[i] {
			if j > 0 && e.Seq != entries[i][j-1].Seq+1 {
				t.Errorf("Settle %d: entry %d has Seq %d after %d; want consecutive", i, j, e.Seq, entries[i][j-1].Seq)
			}
			if o, ok := owner[e.Seq]; ok || e.Seq == 0 {
				t.Errorf("Settle %d: entry %d has Seq %d, already Settle %d's", i, j, e.Seq, o)
			}
			owner[e.Seq] = i
		}
		if len(entries[i]) == 0 {
			continue
		}
		h, err := s.History(ctx, fmt.Sprint("c", i))
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != len(entries[i]) {
			t.Fatalf("History of Settle %d: %d entries; want %d", i, len(h), len(entries[i]))
		}
		for j, e := range h {
			if e.Seq != entries[i][j].Seq || e.EventID != entries[i][j].EventID {
				t.Errorf("History of Settle %d, entry %d: Seq %d %s; want %d %s", i, j, e.Seq, e.EventID, entries[i][j].Seq, entries[i][j].EventID)
			}
		}
	}
}

// TestSettleCancelled: a Settle returns its context's error when the
// context ends, without waiting for a write that Redis holds back.
func TestSettleCancelled(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Settle(cancelled, "g", "before", store.Entry{CorrelationID: "c"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Settle with a cancelled context: %v; want context.Canceled", err)
	}

	rdb := rawClient(t)
	// Redis holds every write for two seconds, or until unpaused: the settler's
	// call waits, and so would the Settle if it ignored its context.
	pauseWrites(t, rdb)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := s.Settle(short, "g", "during", store.Entry{CorrelationID: "c"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Settle while Redis holds writes: %v; want context.DeadlineExceeded", err)
	}
	if err := rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "g", "after", store.Entry{CorrelationID: "c"}); err != nil {
		t.Errorf("Settle after the pause: %v", err)
	}
}

// TestClosedSettleSeen: after Close, Settle and Seen are Unavailable, as
// every other call.
func TestClosedSettleSeen(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "g", "e", store.Entry{CorrelationID: "c"}); baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("Settle on a closed store: %v; want code %q", err, baton.Unavailable)
	}
	if _, err := s.Seen(ctx, "g", "e"); baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("Seen on a closed store: %v; want code %q", err, baton.Unavailable)
	}
}

// TestSettlesShareARecord: the Settles the settler gathers into one call
// journal their entries as one stream record, and each still reads back
// its own from History, with its own Seqs.
func TestSettlesShareARecord(t *testing.T) {
	s, prefix := openPrefixed(t)
	ctx := t.Context()
	rdb := rawClient(t)
	// Redis holds writes while the Settles queue up behind the first one's
	// call: the settler gathers the rest into its next call.
	pauseWrites(t, rdb)
	const n = 20
	entries := make([][]store.Entry, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		entries[i] = []store.Entry{
			{Time: time.Now().UTC(), CorrelationID: fmt.Sprint("c", i), Outcome: store.Handled, EventID: fmt.Sprint("e", i), Group: "g"},
			{Time: time.Now().UTC(), CorrelationID: fmt.Sprint("c", i), Outcome: store.Published, EventID: fmt.Sprint("e", i, "-out")},
		}
		wg.Go(func() { errs[i] = s.Settle(ctx, "g", fmt.Sprint("e", i), entries[i]...) })
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // the first call goes out alone
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Settle %d: %v", i, err)
		}
	}
	if got := rdb.XLen(ctx, prefix+"journal").Val(); got != 2 {
		t.Errorf("%d Settles in two calls of the settler wrote %d stream records; want 2", n, got)
	}
	for i := range n {
		h, err := s.History(ctx, fmt.Sprint("c", i))
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].Seq != entries[i][0].Seq || h[1].Seq != entries[i][0].Seq+1 || h[1].EventID != fmt.Sprint("e", i, "-out") {
			t.Fatalf("History of Settle %d: %+v; want its two entries, Seq %d and on", i, h, entries[i][0].Seq)
		}
	}
}

// TestSettleExpiryBuckets: the marks of a call of the settler share one
// member of the inbox's expiry index, and ExpireInbox still removes each
// mark once its window ends, and not before, even when it was made again
// later (then a later member owns it).
func TestSettleExpiryBuckets(t *testing.T) {
	s, prefix := openPrefixed(t)
	ctx := t.Context()
	rdb := rawClient(t)
	window := s.InboxRetention()
	first := time.Now()
	for _, id := range []string{"e1", "e2", "e3", "again"} {
		if err := s.Settle(ctx, "g", id); err != nil {
			t.Fatal(err)
		}
	}
	members := rdb.ZRange(ctx, prefix+"inbox:expiry", 0, -1).Val()
	if len(members) == 0 || len(members) > 4 {
		t.Fatalf("the expiry index has %d members after four Settles", len(members))
	}
	for _, m := range members {
		if !strings.HasPrefix(m, "b:") {
			t.Fatalf("the expiry index has a member %q; want buckets (b:N) only", m)
		}
	}
	time.Sleep(1500 * time.Millisecond) // more than the second of margin
	if err := s.Settle(ctx, "g", "again"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireInbox(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("ExpireInbox now: %d, %v; want 0", n, err)
	}
	// Past the first marks' window, before the second mark of "again"'s.
	n, err := s.ExpireInbox(ctx, first.Add(window+500*time.Millisecond))
	if err != nil || n != 3 {
		t.Fatalf("ExpireInbox past the first window: %d, %v; want 3", n, err)
	}
	for id, want := range map[string]bool{"e1": false, "e2": false, "e3": false, "again": true} {
		if seen, err := s.Seen(ctx, "g", id); err != nil || seen != want {
			t.Errorf("Seen(%s) = %v, %v; want %v", id, seen, err, want)
		}
	}
	if n, err := s.ExpireInbox(ctx, time.Now().Add(window+2*time.Second)); err != nil || n != 1 {
		t.Fatalf("ExpireInbox past the second window: %d, %v; want 1", n, err)
	}
	if seen, _ := s.Seen(ctx, "g", "again"); seen {
		t.Error("the mark made again is still seen after its window")
	}
	if n := rdb.ZCard(ctx, prefix+"inbox:expiry").Val(); n != 0 {
		t.Errorf("the expiry index keeps %d members after both windows", n)
	}
}

// pauseWrites makes Redis hold every write for two seconds, or until
// unpaused (at the latest when the test ends).
func pauseWrites(t *testing.T, rdb *redis.Client) {
	t.Helper()
	if err := rdb.Do(t.Context(), "CLIENT", "PAUSE", 2000, "WRITE").Err(); err != nil {
		t.Skipf("CLIENT PAUSE: %v", err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "CLIENT", "UNPAUSE") })
}
