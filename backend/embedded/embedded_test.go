package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

func open(t testing.TB) *Backend {
	b, err := Open(Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func msg(typ, id string) bus.Message {
	return bus.Message{Event: baton.Event{Type: typ, ID: id, Source: "test", SpecVersion: baton.SpecVersion, Data: json.RawMessage("{}")}}
}

func TestPublishReceiveAck(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, "g", []string{"a.b.v1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if err := b.Publish(ctx, msg("a.b.v1", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3000 {
		d, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != fmt.Sprint(i) {
			t.Fatalf("got %s want %d", d.ID, i)
		}
		if err := sub.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// Reads after Close are errors, not panics.
func TestReadsAfterClose(t *testing.T) {
	b, err := Open(Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	ctx := context.Background()
	if _, err := b.Run(ctx, "r-1"); err == nil {
		t.Error("Run after Close: no error")
	}
	if _, err := b.ListRuns(ctx, store.RunQuery{}); err == nil {
		t.Error("ListRuns after Close: no error")
	}
	if _, err := b.History(ctx, "x"); err == nil {
		t.Error("History after Close: no error")
	}
	if err := b.Publish(ctx, msg("a.b.v1", "")); err == nil {
		t.Error("Publish after Close: no error")
	}
}

// Only what came from outside is left to the runtime's inbox lookup before
// the handler: what a commit or a run's transition wrote, retries included,
// reaches its group once and says so.
func TestDeliveriesSayWhetherTheyCanRepeat(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, "g", []string{"a.>"})
	if err != nil {
		t.Fatal(err)
	}
	receive := func(what string, unique bool) bus.Delivery {
		t.Helper()
		d, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %s: %v", what, err)
		}
		if d.Unique != unique {
			t.Errorf("%s (id %s, attempt %d): Unique %v, want %v", what, d.ID, d.Attempt, d.Unique, unique)
		}
		return d
	}
	if err := b.Publish(ctx, msg("a.in.v1", "in")); err != nil {
		t.Fatal(err)
	}
	in := receive("a published event", false)
	err = b.Commit(ctx, bus.Commit{Group: "g", Delivery: &in, Handled: "in",
		Publish: []bus.Message{msg("a.out.v1", "out")}})
	if err != nil {
		t.Fatal(err)
	}
	out := receive("a handler's output", true)
	if err := sub.Nack(ctx, out, 0); err != nil {
		t.Fatal(err)
	}
	sub.Ack(ctx, receive("a retry of a handler's output", true))
	run := store.Run{ID: "r-1", Flow: "f", Version: 1, Key: "k", Status: store.RunRunning}
	cmd := store.Outbound{Group: "g", Type: "a.cmd.v1", ID: "r-1/step#1", Body: bus.AppendRecord(nil, msg("a.cmd.v1", "r-1/step#1"))}
	if _, _, err := b.CreateRun(ctx, run, []store.Outbound{cmd}); err != nil {
		t.Fatal(err)
	}
	sub.Ack(ctx, receive("a run's command", true))
	if err := b.PublishTo(ctx, "g", msg("a.out.v1", "out")); err != nil {
		t.Fatal(err)
	}
	sub.Ack(ctx, receive("a replayed dead letter", false))
}

// MemTableSize is what pebble uses: the same writes flush small memtables
// to disk, and stay in a default one.
func TestMemTableSize(t *testing.T) {
	t.Parallel()
	flushes := func(size int64) int64 {
		b, err := Open(Config{Dir: t.TempDir(), MemTableSize: size})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ctx := context.Background()
		sub, err := b.Subscribe(ctx, "g", []string{"a.b.v1"}) // what is published is kept for g
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
		data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 1000)})
		for i := range 40 {
			msgs := make([]bus.Message, 100)
			for j := range msgs {
				msgs[j] = msg("a.b.v1", fmt.Sprintf("m-%d-%d", i, j))
				msgs[j].Data = data
			}
			if err := b.Publish(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
		}
		return b.db.Metrics().Flush.Count
	}
	if small, def := flushes(1<<20), flushes(0); small == 0 || def != 0 {
		t.Fatalf("flushes: %d with 1 MiB memtables, %d with the default; want some, then none", small, def)
	}
}

// A commit that takes the miss Seen found, rather than reading the inbox
// again, still sees a mark written since: a copy handled meanwhile makes it
// a duplicate, however many rounds were written in between.
func TestCommitAfterSeenSeesMarksSince(t *testing.T) {
	t.Parallel()
	for _, between := range []int{0, 1, recentRounds} {
		t.Run(fmt.Sprint(between), func(t *testing.T) {
			t.Parallel()
			b, err := Open(Config{Memory: true})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx := context.Background()
			if seen, err := b.Seen(ctx, "billing", "e-1"); err != nil || seen {
				t.Fatalf("Seen = %v, %v; want a miss", seen, err)
			}
			if err := b.MarkSeen(ctx, "billing", "e-1"); err != nil {
				t.Fatal(err)
			}
			for i := range between {
				if err := b.MarkSeen(ctx, "billing", fmt.Sprint("other-", i)); err != nil {
					t.Fatal(err)
				}
			}
			err = b.Commit(ctx, bus.Commit{Group: "billing", Handled: "e-1"})
			if !errors.Is(err, bus.ErrDuplicate) {
				t.Fatalf("commit of e-1 after it was marked: %v, want a duplicate", err)
			}
			// And a miss no one filled is taken as one.
			if seen, err := b.Seen(ctx, "billing", "e-2"); err != nil || seen {
				t.Fatalf("Seen = %v, %v; want a miss", seen, err)
			}
			if err := b.Commit(ctx, bus.Commit{Group: "billing", Handled: "e-2"}); err != nil {
				t.Fatalf("commit of e-2: %v", err)
			}
			if seen, err := b.Seen(ctx, "billing", "e-2"); err != nil || !seen {
				t.Fatalf("Seen(e-2) after its commit = %v, %v; want it marked", seen, err)
			}
		})
	}
}

// A run's revision and wake time are read from its document when the
// writer does not remember them (after a restart), including a run saved
// by an earlier version, which also wrote them under a key of their own.
func TestRunRevisionFromDocument(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := b.CreateRun(ctx, store.Run{ID: "r-1", Flow: "f", Key: "k-1", Status: store.RunRunning, Created: at, Wake: at.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Wake = at.Add(2 * time.Hour)
	if r, err = b.SaveRun(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	// What an earlier version wrote: the document, and beside it the
	// revision and wake time under V.
	old := store.Run{ID: "r-old", Flow: "f", Key: "k-old", Status: store.RunRunning, Created: at, Updated: at, Rev: 7, Wake: at.Add(4 * time.Hour)}
	err = b.write(func(w *round) error {
		for _, kv := range [][2][]byte{
			{runKey(old.ID), store.AppendRun(nil, &old)},
			{runRevKey(old.ID), appendTime(appendU64(nil, uint64(old.Rev)), old.Wake)},
			{runBizKey(old.Flow, old.Key), []byte(old.ID)},
			{wakeKey(old.Wake, old.ID), nil},
		} {
			if err := w.set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stale := r
	stale.Rev = 1
	if _, err := b.SaveRun(ctx, stale, nil); baton.ErrorCode(err) != baton.Conflict {
		t.Fatalf("SaveRun from revision 1 after a restart, the run at 2: %v, want a conflict", err)
	}
	r.Wake = at.Add(3 * time.Hour)
	if r, err = b.SaveRun(ctx, r, nil); err != nil || r.Rev != 3 {
		t.Fatalf("SaveRun from revision 2 after a restart: rev %d, %v", r.Rev, err)
	}
	old.Wake = at.Add(5 * time.Hour)
	if old, err = b.SaveRun(ctx, old, nil); err != nil || old.Rev != 8 {
		t.Fatalf("SaveRun of a run an earlier version saved at revision 7: rev %d, %v", old.Rev, err)
	}
	due, err := b.DueRuns(ctx, at.Add(24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range due {
		got = append(got, fmt.Sprintf("%s@%s", d.ID, d.Wake.Sub(at)))
	}
	if want := []string{"r-1@3h0m0s", "r-old@5h0m0s"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("due runs: %v, want %v (each under its last wake time only)", got, want)
	}
}

// Misses no commit takes do not fill the store's memory of them for good:
// past the bound it starts again, and a later miss is still taken.
func TestMissesStartAgainWhenFull(t *testing.T) {
	t.Parallel()
	var m misses
	for i := range maxMisses + 1 {
		m.put([]byte(fmt.Sprint("k-", i)), 7)
	}
	if len(m.m) > maxMisses {
		t.Fatalf("%d misses kept, over the bound of %d", len(m.m), maxMisses)
	}
	if pre, ok := m.take([]byte(fmt.Sprint("k-", maxMisses))); !ok || pre != 7 {
		t.Fatalf("the miss put last: take = %d, %v; want 7, true", pre, ok)
	}
}
