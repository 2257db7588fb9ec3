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
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
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
