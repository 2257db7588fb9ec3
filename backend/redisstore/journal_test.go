package redisstore_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// TestJournalReadsOldEntries writes an entry as the journal did before the
// binary encoding (JSON in the stream, its Seq in the correlation's list)
// and checks that History and Since read it beside a new one, in order.
func TestJournalReadsOldEntries(t *testing.T) {
	s, prefix := openPrefixed(t)
	ctx := context.Background()
	rdb := rawClient(t)
	old, err := json.Marshal(store.Entry{Time: time.Now().UTC(), CorrelationID: "o-1", Outcome: store.Published, EventID: "e-1"})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := rdb.Incr(ctx, prefix+"journal:seq").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "journal", ID: strconv.FormatInt(seq, 10) + "-0", Values: []any{"e", old}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.RPush(ctx, prefix+"journal:corr:o-1", seq).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "o-1", Outcome: store.Handled, EventID: "e-1", Group: "g"}); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	since, err := s.Since(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]store.Entry{h, since} {
		if len(got) != 2 || got[0].Outcome != store.Published || got[0].Seq != uint64(seq) || got[1].Outcome != store.Handled || got[1].Group != "g" {
			t.Fatalf("journal with an old and a new entry reads %+v", got)
		}
	}
}

// TestJournalRecordPerWrite checks that a Settle's entries go to the
// journal stream as one record, and that History, Since (from inside the
// record) and a sweep read it entry by entry, beside an old one-entry
// record.
func TestJournalRecordPerWrite(t *testing.T) {
	s, prefix := openPrefixed(t)
	ctx := context.Background()
	rdb := rawClient(t)
	at := time.Now().AddDate(10, 0, 0) // ahead of the background sweeps
	if err := s.Append(ctx, store.Entry{Time: at, CorrelationID: "o-1", Outcome: store.Published, EventID: "e-0"}); err != nil {
		t.Fatal(err)
	}
	entries := []store.Entry{
		{Time: at, CorrelationID: "o-1", Outcome: store.Handled, EventID: "e-0", Group: "g"},
		{Time: at, CorrelationID: "o-2", Outcome: store.Published, EventID: "e-1"},
		{Time: at, CorrelationID: "o-1", Outcome: store.Published, EventID: "e-2"},
	}
	if err := s.Settle(ctx, "g", "e-0", entries...); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, prefix+"journal").Val(); n != 2 {
		t.Fatalf("an Append of one entry and a Settle of three wrote %d stream records; want 2", n)
	}
	if n := rdb.LLen(ctx, prefix+"journal:corr:o-1").Val(); n != 2 {
		t.Fatalf("o-1's list has %d items; want 2 (one per record)", n)
	}
	if entries[0].Seq != 2 || entries[1].Seq != 3 || entries[2].Seq != 4 {
		t.Fatalf("Settle numbered its entries %d, %d, %d; want 2, 3, 4", entries[0].Seq, entries[1].Seq, entries[2].Seq)
	}
	h, err := s.History(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Seq != 1 || h[1].Seq != 2 || h[1].Group != "g" || h[2].Seq != 4 || h[2].EventID != "e-2" {
		t.Fatalf("History(o-1) = %+v", h)
	}
	if h, err := s.History(ctx, "o-2"); err != nil || len(h) != 1 || h[0].Seq != 3 || h[0].EventID != "e-1" {
		t.Fatalf("History(o-2) = %+v, %v", h, err)
	}
	since, err := s.Since(ctx, 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != 2 || since[0].Seq != 3 || since[1].Seq != 4 {
		t.Fatalf("Since(2) = %+v; want Seq 3 and 4, from inside the record", since)
	}
	if since, err := s.Since(ctx, 0, 2); err != nil || len(since) != 2 || since[1].Seq != 2 {
		t.Fatalf("Since(0, limit 2) = %+v, %v", since, err)
	}
	swept, err := s.Sweep(ctx, at.Add(s.Retention().Age+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if swept.Journal != 4 {
		t.Fatalf("the sweep counted %d entries; want 4", swept.Journal)
	}
	if n := rdb.LLen(ctx, prefix+"journal:corr:o-2").Val(); n != 0 {
		t.Fatalf("o-2's list keeps %d items after the sweep", n)
	}
}
