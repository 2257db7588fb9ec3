package embedded

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
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

// TestSaveRunAckingJournals checks that the journal entries given to
// SaveRunAcking (a coordinator's record of a run's end) are written with the
// save and the acknowledgement, and not at all when the save is refused.
func TestSaveRunAckingJournals(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	at := time.Now().UTC()
	run, _, err := b.CreateRun(ctx, store.Run{ID: "r-1", Flow: "ship", Key: "p-1", Status: store.RunRunning, Created: at}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, "coordinator", []string{"parcel.packed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, msg("parcel.packed.v1", "reply-1")); err != nil {
		t.Fatal(err)
	}
	d, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end := store.Entry{Time: at, CorrelationID: "p-1", Outcome: store.RunEnded(store.RunCompleted), EventID: "r-1", EventType: "ship"}
	ends := func() int {
		hist, err := b.History(ctx, "p-1")
		if err != nil {
			t.Fatal(err)
		}
		return len(hist)
	}

	stale := run
	stale.Rev, stale.Status = 7, store.RunCompleted
	if _, err := b.SaveRunAcking(ctx, stale, nil, d, end); baton.ErrorCode(err) != baton.Conflict {
		t.Fatalf("SaveRunAcking from a stale revision: %v, want a conflict", err)
	}
	if n := ends(); n != 0 {
		t.Fatalf("a refused save journaled %d entries", n)
	}

	run.Status = store.RunCompleted
	if _, err := b.SaveRunAcking(ctx, run, nil, d, end); err != nil {
		t.Fatal(err)
	}
	hist, err := b.History(ctx, "p-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Outcome != end.Outcome || hist[0].EventID != "r-1" || hist[0].Seq == 0 {
		t.Fatalf("journal after the save: %+v, want the run's end, numbered", hist)
	}
	if err := sub.Ack(ctx, d); err == nil {
		t.Error("the reply could be acked again after the save acked it")
	}
}

// TestSaveRunAckingAsync checks that a save taken before it is durable
// refuses a stale revision at once (the delivery then still to be
// settled), that a save of the next revision is taken before the first is
// waited for, and that both are saved and acknowledge their replies.
func TestSaveRunAckingAsync(t *testing.T) {
	b := open(t)
	ctx := t.Context()
	run, _, err := b.CreateRun(ctx, store.Run{ID: "r-1", Flow: "ship", Key: "p-1", Status: store.RunRunning, Created: time.Now().UTC()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx, "coordinator", []string{"parcel.packed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, msg("parcel.packed.v1", "reply-1"), msg("parcel.packed.v1", "reply-2")); err != nil {
		t.Fatal(err)
	}
	d1, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}

	stale := run
	stale.Rev = 7
	if _, durable, err := b.SaveRunAckingAsync(ctx, stale, nil, d1); baton.ErrorCode(err) != baton.Conflict || durable != nil {
		t.Fatalf("SaveRunAckingAsync from a stale revision: %v, want a conflict at once", err)
	}
	first, durable1, err := b.SaveRunAckingAsync(ctx, run, nil, d1)
	if err != nil {
		t.Fatal(err)
	}
	first.Status = store.RunCompleted
	second, durable2, err := b.SaveRunAckingAsync(ctx, first, nil, d2)
	if err != nil {
		t.Fatalf("the save after one not yet waited for: %v", err)
	}
	for _, durable := range []func(context.Context) error{durable1, durable2} {
		if err := durable(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != second.Rev || got.Status != store.RunCompleted || second.Rev != run.Rev+2 {
		t.Fatalf("stored run at revision %d, %s; want %d, completed", got.Rev, got.Status, run.Rev+2)
	}
	for _, d := range []bus.Delivery{d1, d2} {
		if err := sub.Ack(ctx, d); err == nil {
			t.Errorf("reply %s could be acked again after its save acked it", d.ID)
		}
	}
}
