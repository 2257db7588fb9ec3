package embedded

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
)

// TestJournalReadsOldEntries checks that a data directory whose journal
// holds JSON entries, as written before the binary encoding, reads them
// beside new ones, in order, through History and Since.
func TestJournalReadsOldEntries(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	old := store.Entry{Time: time.Now().UTC(), CorrelationID: "o-1", Outcome: store.Published, EventID: "e-1"}
	v, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.write(func(r *round) error {
		seq := r.nextSeq()
		if err := r.set(seqKey(kindJournal, seq), v); err != nil {
			return err
		}
		return r.set(corrKey(old.CorrelationID, seq), nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "o-1", Outcome: store.Handled, EventID: "e-1", Group: "g"}); err != nil {
		t.Fatal(err)
	}
	h, err := b.History(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	since, err := b.Since(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]store.Entry{h, since} {
		if len(got) != 2 || got[0].Outcome != store.Published || got[1].Outcome != store.Handled || got[1].Group != "g" || got[0].Seq >= got[1].Seq {
			t.Fatalf("journal with an old and a new entry reads %+v", got)
		}
	}
}
