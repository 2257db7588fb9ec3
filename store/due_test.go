package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// A part sharing the run index gets its own due runs even when the
// earliest due runs, more than a page of them, are another part's; and
// only its own.
func TestDueRunsOf(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	add := func(flow string, i int, wake time.Time) {
		t.Helper()
		r := store.Run{ID: fmt.Sprintf("r-%s-%02d", flow, i), Flow: flow, Version: 1, Key: fmt.Sprint(i),
			Status: store.RunRunning, Created: now, Updated: now, Wake: wake}
		if _, _, err := b.CreateRun(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 { // theirs, due first
		add("theirs", i, now.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	for i := range 3 { // mine, due later
		add("mine", i, now.Add(-time.Minute+time.Duration(i)*time.Second))
	}
	add("mine", 3, now.Add(time.Hour)) // not due
	mine := func(r store.Run) bool { return r.Flow == "mine" }

	for _, limit := range []int{4, 64} {
		got, err := store.DueRunsOf(ctx, b, now, limit, mine)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if want := "r-mine-00 r-mine-01 r-mine-02"; strings.Join(ids, " ") != want {
			t.Errorf("limit %d: due runs %v; want %s", limit, ids, want)
		}
	}
	// Past 16 pages of theirs, it gives up: a backlog that large is the
	// other part's to drain.
	if got, err := store.DueRunsOf(ctx, b, now, 1, mine); err != nil || len(got) != 0 {
		t.Errorf("limit 1: %d due runs, %v; want none found within 16 runs", len(got), err)
	}
}
