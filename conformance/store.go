package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// TestStore runs the store suite. f is what the backend promises beyond the
// contract (see Features); open returns a fresh, isolated store and
// registers its cleanup; it is called once per case.
func TestStore(t *testing.T, f Features, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, st store.Store)
	}{
		{"InboxPerGroup", testInboxPerGroup},
		{"InboxRetention", testInboxRetention},
		{"JournalHistory", testJournalHistory},
		{"JournalSince", testJournalSince},
		{"JournalConcurrent", testJournalConcurrent},
		{"Settle", testSettle},
		{"DeadRoundTrip", testDeadRoundTrip},
		{"DeadList", testDeadList},
		{"DeadDrop", testDeadDrop},
		{"RunCreate", testRunCreate},
		{"RunCreateExisting", testRunCreateExisting},
		{"RunCreateInvalid", testRunCreateInvalid},
		{"RunInvalidJSON", testRunInvalidJSON},
		{"RunNotFound", testRunNotFound},
		{"RunSave", testRunSave},
		{"RunSaveConflict", testRunSaveConflict},
		{"RunSaveRace", testRunSaveRace},
		{"RunList", testRunList},
		{"RunListPages", testRunListPages},
		{"RunDue", testRunDue},
		{"RunOutboxToGroup", given(f, testRunOutboxToGroup)},
		{"RunOutboxToAll", given(f, testRunOutboxToAll)},
		{"RunOutboxExisting", given(f, testRunOutboxExisting)},
		{"RunOutboxConflict", given(f, testRunOutboxConflict)},
		{"RunOutboxKept", given(f, testRunOutboxKept)},
		{"ScheduleSave", testScheduleSave},
		{"ScheduleConflict", testScheduleConflict},
		{"ScheduleSaveRace", testScheduleSaveRace},
		{"ScheduleList", testScheduleList},
		{"ScheduleDelete", testScheduleDelete},
		{"Retention", testRetention},
		{"RetentionDeadCap", testRetentionDeadCap},
		{"DeadBodyBound", testDeadBodyBound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

// stamp is a time every backend keeps exactly: UTC, whole milliseconds.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// testInboxPerGroup: marks belong to one group and one id.
func testInboxPerGroup(t *testing.T, st store.Store) {
	ctx := t.Context()
	a, b := unique("inbox-a-"), unique("inbox-b-")
	id := unique("ev-")
	seen := func(group, id string) bool {
		t.Helper()
		ok, err := st.Seen(ctx, group, id)
		if err != nil {
			t.Fatalf("seen %q %q: %v", group, id, err)
		}
		return ok
	}
	mark := func(group, id string) {
		t.Helper()
		if err := st.MarkSeen(ctx, group, id); err != nil {
			t.Fatalf("mark %q %q: %v", group, id, err)
		}
	}
	if seen(a, id) {
		t.Fatalf("%s seen by %s before any mark", id, a)
	}
	mark(a, id)
	if !seen(a, id) {
		t.Errorf("%s not seen by %s after MarkSeen", id, a)
	}
	if seen(b, id) {
		t.Errorf("%s marked by %s is seen by %s too; marks are per group", id, a, b)
	}
	if seen(a, id+"x") || seen(a, id[:len(id)-1]) {
		t.Errorf("a mark of %s makes a different id seen", id)
	}
	mark(a, id) // again: idempotent
	if !seen(a, id) {
		t.Errorf("%s not seen after a second MarkSeen", id)
	}
	mark(b, id)
	if !seen(b, id) {
		t.Errorf("%s not seen by %s after its own MarkSeen", id, b)
	}
	if err := st.Forget(ctx, a, id); err != nil {
		t.Fatalf("forget %q %q: %v", a, id, err)
	}
	if seen(a, id) || !seen(b, id) {
		t.Errorf("after Forget(%s, %s): want unseen by %s and still seen by %s", a, id, a, b)
	}
	if err := st.Forget(ctx, a, unique("never-")); err != nil {
		t.Errorf("forget an id never marked: %v, want no error", err)
	}
	mark(a, id)

	// Group and id must not run into each other however the store joins
	// them into keys.
	g := unique("inbox-c-")
	for _, sep := range []string{":", "/", "."} {
		mark(g, "x"+sep+"y")
		if seen(g+sep+"x", "y") {
			t.Errorf("mark (%q, %q) makes (%q, %q) seen", g, "x"+sep+"y", g+sep+"x", "y")
		}
	}
}

// testInboxRetention: a mark survives within the retention window and is
// removed after it.
func testInboxRetention(t *testing.T, st store.Store) {
	ex, ok := st.(store.Expirer)
	if !ok {
		t.Skip("store does not implement store.Expirer")
	}
	ctx := t.Context()
	window := ex.InboxRetention()
	if window <= 0 {
		t.Skipf("store keeps inbox marks forever (retention %v)", window)
	}
	g1, g2 := unique("retain-a-"), unique("retain-b-")
	id := unique("ev-")
	before := time.Now()
	for _, g := range []string{g1, g2} {
		if err := st.MarkSeen(ctx, g, id); err != nil {
			t.Fatalf("mark: %v", err)
		}
	}
	after := time.Now()
	for _, now := range []time.Time{after, before.Add(window / 2)} {
		n, err := ex.ExpireInbox(ctx, now)
		if err != nil {
			t.Fatalf("expire at %v: %v", now, err)
		}
		if n != 0 {
			t.Errorf("ExpireInbox within the %v window (%v after marking) removed %d marks; expected 0", window, now.Sub(before), n)
		}
		if ok, err := st.Seen(ctx, g1, id); err != nil || !ok {
			t.Errorf("mark gone within the retention window: seen %v, err %v", ok, err)
		}
	}
	n, err := ex.ExpireInbox(ctx, after.Add(window+time.Second))
	if err != nil {
		t.Fatalf("expire past the window: %v", err)
	}
	if n != 2 {
		t.Errorf("ExpireInbox past the %v window removed %d marks; expected the 2 made", window, n)
	}
	for _, g := range []string{g1, g2} {
		if ok, err := st.Seen(ctx, g, id); err != nil || ok {
			t.Errorf("mark of %s still there after its window: seen %v, err %v", g, ok, err)
		}
	}
}

func entryDiff(want, got store.Entry) string {
	var d []string
	add := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w))
	}
	if !got.Time.Equal(want.Time) {
		add("Time", got.Time, want.Time)
	}
	if got.CorrelationID != want.CorrelationID {
		add("CorrelationID", got.CorrelationID, want.CorrelationID)
	}
	if got.Outcome != want.Outcome {
		add("Outcome", got.Outcome, want.Outcome)
	}
	if got.EventID != want.EventID {
		add("EventID", got.EventID, want.EventID)
	}
	if got.EventType != want.EventType {
		add("EventType", got.EventType, want.EventType)
	}
	if got.Subject != want.Subject {
		add("Subject", got.Subject, want.Subject)
	}
	if got.Source != want.Source {
		add("Source", got.Source, want.Source)
	}
	if got.TraceID != want.TraceID {
		add("TraceID", got.TraceID, want.TraceID)
	}
	if got.Group != want.Group {
		add("Group", got.Group, want.Group)
	}
	if got.Attempt != want.Attempt {
		add("Attempt", got.Attempt, want.Attempt)
	}
	if got.Duration != want.Duration {
		add("Duration", got.Duration, want.Duration)
	}
	if got.Error != want.Error {
		add("Error", got.Error, want.Error)
	}
	if !slices.Equal(got.Caused, want.Caused) {
		add("Caused", got.Caused, want.Caused)
	}
	return strings.Join(d, "; ")
}

func history(t *testing.T, st store.Store, correlation string) []store.Entry {
	t.Helper()
	h, err := st.History(t.Context(), correlation)
	if err != nil {
		t.Fatalf("history %s: %v", correlation, err)
	}
	return h
}

// checkSeq fails unless the entries' Seq are assigned and strictly
// increasing.
func checkSeq(t *testing.T, what string, entries []store.Entry) {
	t.Helper()
	for i, e := range entries {
		if e.Seq == 0 {
			t.Fatalf("%s: entry %d has Seq 0; expected the journal to assign Seq >= 1", what, i)
		}
		if i > 0 && e.Seq <= entries[i-1].Seq {
			t.Fatalf("%s: entry %d has Seq %d after %d; expected strictly increasing", what, i, e.Seq, entries[i-1].Seq)
		}
	}
}

// testJournalHistory: History returns one correlation id's entries, whole
// (the trace id included) and in order, and nothing of another's.
func testJournalHistory(t *testing.T, st store.Store) {
	ctx := t.Context()
	a, b := unique("corr-a-"), unique("corr-b-")
	now := stamp(time.Now())
	entry := func(corr string, i int, outcome store.Outcome) store.Entry {
		return store.Entry{
			Time: now.Add(time.Duration(i) * time.Millisecond), CorrelationID: corr, Outcome: outcome,
			EventID: fmt.Sprintf("%s-ev-%d", corr, i), EventType: "order.placed.v1", Subject: "ORDER-" + corr,
			Source: "conformance", Group: "billing", Attempt: i + 1, Duration: time.Duration(i+1) * time.Millisecond,
			Error: fmt.Sprintf("error %d", i), Caused: []string{fmt.Sprintf("caused-%d-a", i), fmt.Sprintf("caused-%d-b", i)},
		}
	}
	wantA := []store.Entry{entry(a, 0, store.Published), entry(a, 1, store.Handled), entry(a, 2, store.Failed), entry(a, 3, store.DeadLettered)}
	wantB := []store.Entry{entry(b, 0, store.Published), entry(b, 1, store.Duplicate)}
	wantA[0].Caused, wantA[0].Error = nil, ""
	for i := range wantA {
		wantA[i].TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	}

	// Interleaved, some in one Append and some alone.
	if err := st.Append(ctx, wantA[0], wantB[0], wantA[1]); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := st.Append(ctx, wantB[1]); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := st.Append(ctx, wantA[2], wantA[3]); err != nil {
		t.Fatalf("append: %v", err)
	}

	for _, c := range []struct {
		corr string
		want []store.Entry
	}{{a, wantA}, {b, wantB}} {
		got := history(t, st, c.corr)
		if len(got) != len(c.want) {
			t.Fatalf("history of %s: expected %d entries; got %s", c.corr, len(c.want), outcomes(got))
		}
		for i := range c.want {
			if diff := entryDiff(c.want[i], got[i]); diff != "" {
				t.Errorf("history of %s, entry %d: %s", c.corr, i, diff)
			}
		}
		checkSeq(t, "history of "+c.corr, got)
	}
	if got := history(t, st, unique("corr-none-")); len(got) != 0 {
		t.Errorf("history of an unknown correlation id: expected none; got %s", outcomes(got))
	}
}

// testJournalSince: Since pages through the whole journal in Seq order.
func testJournalSince(t *testing.T, st store.Store) {
	const n, page = 25, 7
	ctx := t.Context()
	corr := unique("corr-")
	var want []store.Entry
	for i := range n {
		e := store.Entry{Time: stamp(time.Now()), CorrelationID: corr, Outcome: store.Handled, EventID: fmt.Sprintf("ev-%02d", i)}
		want = append(want, e)
		if err := st.Append(ctx, e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	var got []store.Entry
	var after uint64
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("Since does not advance: %d pages of at most %d for %d entries", pages, page, n)
		}
		p, err := st.Since(ctx, after, page)
		if err != nil {
			t.Fatalf("since %d: %v", after, err)
		}
		if len(p) > page {
			t.Fatalf("Since(%d, %d) returned %d entries", after, page, len(p))
		}
		if len(p) == 0 {
			break
		}
		if p[0].Seq <= after {
			t.Fatalf("Since(%d) returned Seq %d", after, p[0].Seq)
		}
		got = append(got, p...)
		after = p[len(p)-1].Seq
	}
	if len(got) != n {
		t.Fatalf("paging Since by %d: expected %d entries; got %d", page, n, len(got))
	}
	checkSeq(t, "Since", got)
	for i := range want {
		if got[i].EventID != want[i].EventID {
			t.Fatalf("Since entry %d is %q; expected %q (append order)", i, got[i].EventID, want[i].EventID)
		}
	}
	if p, err := st.Since(ctx, got[n-1].Seq, page); err != nil || len(p) != 0 {
		t.Errorf("Since the last Seq: expected nothing; got %d entries, err %v", len(p), err)
	}
	if p, err := st.Since(ctx, got[9].Seq, 3); err != nil || len(p) != 3 || p[0].EventID != want[10].EventID {
		t.Errorf("Since the 10th Seq, limit 3: expected entries 10..12; got %s, err %v", outcomes(p), err)
	}
}

// testJournalConcurrent: appends racing each other get unique Seq and lose
// nothing.
// testSettle: a Settler marks an event handled and journals its handling
// at once, from many goroutines at a time, two of which may settle the same
// event (a redelivered copy handled alongside the original).
func testSettle(t *testing.T, st store.Store) {
	settler, ok := st.(store.Settler)
	if !ok {
		t.Skip("the store is not a store.Settler: the runtime marks and appends in two steps")
	}
	const writers, each = 8, 20
	ctx := t.Context()
	group := unique("settle-")
	corrs := make([]string, writers)
	for w := range corrs {
		corrs[w] = unique(fmt.Sprintf("corr-%d-", w))
	}
	id := func(w, i int) string { return fmt.Sprintf("%s-%02d", corrs[w], i) }
	errs := make(chan error, 2*writers)
	var wg sync.WaitGroup
	for w, corr := range corrs {
		wg.Go(func() {
			for i := range each {
				entries := []store.Entry{
					{Time: stamp(time.Now()), CorrelationID: corr, Outcome: store.Handled, EventID: id(w, i), Group: group, Attempt: 1},
					{Time: stamp(time.Now()), CorrelationID: corr, Outcome: store.Published, EventID: id(w, i) + "-out"},
				}
				if err := settler.Settle(ctx, group, id(w, i), entries...); err != nil {
					errs <- fmt.Errorf("writer %d: settle %d: %w", w, i, err)
					return
				}
				if entries[0].Seq == 0 || entries[1].Seq <= entries[0].Seq {
					errs <- fmt.Errorf("writer %d: settle %d gave the entries Seq %d and %d; want increasing, non-zero", w, i, entries[0].Seq, entries[1].Seq)
					return
				}
			}
		})
	}
	// A copy of writer 0's first event, settled while the others write.
	wg.Go(func() {
		e := store.Entry{Time: stamp(time.Now()), CorrelationID: unique("copy-"), Outcome: store.Handled, EventID: id(0, 0), Group: group, Attempt: 2}
		if err := settler.Settle(ctx, group, id(0, 0), e); err != nil {
			errs <- fmt.Errorf("settle a copy: %w", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w, corr := range corrs {
		h := history(t, st, corr)
		if len(h) != 2*each {
			t.Fatalf("history of %s: %d entries; want %d, two per settled event", corr, len(h), 2*each)
		}
		checkSeq(t, "history of "+corr, h)
		for i := range each {
			if h[2*i].EventID != id(w, i) || h[2*i+1].EventID != id(w, i)+"-out" {
				t.Fatalf("history of %s, event %d: %q then %q; want %q then its output, in the writer's order", corr, i, h[2*i].EventID, h[2*i+1].EventID, id(w, i))
			}
			seen, err := st.Seen(ctx, group, id(w, i))
			if err != nil || !seen {
				t.Fatalf("%s settled by %s, but Seen says %v (err %v)", id(w, i), group, seen, err)
			}
		}
	}
	if seen, err := st.Seen(ctx, unique("other-"), id(0, 0)); err != nil || seen {
		t.Errorf("an event settled by %s is seen by another group: %v (err %v)", group, seen, err)
	}
}

func testJournalConcurrent(t *testing.T, st store.Store) {
	const writers, each = 8, 50
	ctx := t.Context()
	corrs := make([]string, writers)
	for w := range corrs {
		corrs[w] = unique(fmt.Sprintf("corr-%d-", w))
	}
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w, corr := range corrs {
		wg.Go(func() {
			for i := range each {
				e := store.Entry{Time: stamp(time.Now()), CorrelationID: corr, Outcome: store.Handled, EventID: fmt.Sprintf("%s-%02d", corr, i), Attempt: 1}
				if err := st.Append(ctx, e); err != nil {
					errs <- fmt.Errorf("writer %d: append %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	seqs := map[uint64]string{}
	for _, corr := range corrs {
		h := history(t, st, corr)
		if len(h) != each {
			t.Fatalf("history of %s: expected %d entries appended concurrently with others; got %d", corr, each, len(h))
		}
		checkSeq(t, "history of "+corr, h)
		for i, e := range h {
			if want := fmt.Sprintf("%s-%02d", corr, i); e.EventID != want {
				t.Fatalf("history of %s, entry %d: %q; expected %q (its writer's order)", corr, i, e.EventID, want)
			}
			if prev, dup := seqs[e.Seq]; dup {
				t.Fatalf("Seq %d given to both %s and %s", e.Seq, prev, e.EventID)
			}
			seqs[e.Seq] = e.EventID
		}
	}
	all, err := st.Since(ctx, 0, writers*each+10)
	if err != nil {
		t.Fatalf("since 0: %v", err)
	}
	if len(all) != writers*each {
		t.Fatalf("Since(0) after %d concurrent appends: got %d entries", writers*each, len(all))
	}
	checkSeq(t, "Since(0)", all)
}

func deadDiff(want, got store.DeadLetter) string {
	var d []string
	add := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w))
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Group != want.Group {
		add("Group", got.Group, want.Group)
	}
	if got.Type != want.Type {
		add("Type", got.Type, want.Type)
	}
	if !bytes.Equal(got.Body, want.Body) {
		if max(len(got.Body), len(want.Body)) > 200 {
			add("Body", fmt.Sprintf("%d bytes", len(got.Body)), fmt.Sprintf("%d bytes", len(want.Body)))
		} else {
			add("Body", fmt.Sprintf("%q", got.Body), fmt.Sprintf("%q", want.Body))
		}
	}
	if got.EventID != want.EventID {
		add("EventID", got.EventID, want.EventID)
	}
	if got.CorrelationID != want.CorrelationID {
		add("CorrelationID", got.CorrelationID, want.CorrelationID)
	}
	if got.Attempts != want.Attempts {
		add("Attempts", got.Attempts, want.Attempts)
	}
	if got.Reason != want.Reason {
		add("Reason", got.Reason, want.Reason)
	}
	if !got.Time.Equal(want.Time) {
		add("Time", got.Time, want.Time)
	}
	if !maps.Equal(got.Meta, want.Meta) {
		add("Meta", got.Meta, want.Meta)
	}
	if got.Truncated != want.Truncated || got.Size != want.Size {
		add("Truncated, Size", fmt.Sprint(got.Truncated, ", ", got.Size), fmt.Sprint(want.Truncated, ", ", want.Size))
	}
	return strings.Join(d, "; ")
}

func deadLetter(i int) store.DeadLetter {
	return store.DeadLetter{
		Group:         "billing",
		Type:          "order.placed.v1",
		Body:          []byte(fmt.Sprintf(`{"id":"ev-%d","weird":"\u0000\n"}`, i)),
		EventID:       fmt.Sprintf("ev-%d", i),
		CorrelationID: fmt.Sprintf("corr-%d", i),
		Attempts:      5,
		Reason:        fmt.Sprintf("reason %d: boom", i),
		Time:          stamp(time.Now()).Add(time.Duration(i) * time.Millisecond),
	}
}

func listDead(t *testing.T, st store.Store, after string, limit int) []store.DeadLetter {
	t.Helper()
	l, err := st.ListDead(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("list dead after %q limit %d: %v", after, limit, err)
	}
	return l
}

// testDeadRoundTrip: AddDead assigns an ID; Dead returns every field.
func testDeadRoundTrip(t *testing.T, st store.Store) {
	ctx := t.Context()
	want := deadLetter(1)
	want.Body = []byte{0xff, 0x00, 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'} // undecodable, as dead letters can be
	want.Meta = map[string]string{"replyto": "coordinator", "run": "r-1", "step": "charge/card é"}
	want.EventID, want.CorrelationID = "", ""
	if err := st.AddDead(ctx, want); err != nil {
		t.Fatalf("add dead: %v", err)
	}
	l := listDead(t, st, "", 10)
	if len(l) != 1 {
		t.Fatalf("expected 1 dead letter listed after one AddDead; got %d", len(l))
	}
	if l[0].ID == "" {
		t.Fatalf("AddDead did not assign an ID")
	}
	want.ID = l[0].ID
	if diff := deadDiff(want, l[0]); diff != "" {
		t.Errorf("listed dead letter: %s", diff)
	}
	got, err := st.Dead(ctx, want.ID)
	if err != nil {
		t.Fatalf("dead %s: %v", want.ID, err)
	}
	if diff := deadDiff(want, got); diff != "" {
		t.Errorf("Dead(%s): %s", want.ID, diff)
	}
}

// testDeadList: ListDead pages oldest first.
func testDeadList(t *testing.T, st store.Store) {
	const n, page = 12, 5
	var want []store.DeadLetter
	for i := range n {
		d := deadLetter(i)
		if err := st.AddDead(t.Context(), d); err != nil {
			t.Fatalf("add dead %d: %v", i, err)
		}
		want = append(want, d)
	}
	var got []store.DeadLetter
	after := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("ListDead does not advance: %d pages of at most %d for %d dead letters", pages, page, n)
		}
		p := listDead(t, st, after, page)
		if len(p) > page {
			t.Fatalf("ListDead(%q, %d) returned %d", after, page, len(p))
		}
		if len(p) == 0 {
			break
		}
		if wantLen := min(page, n-len(got)); len(p) != wantLen {
			t.Fatalf("ListDead(%q, %d) returned %d; expected %d", after, page, len(p), wantLen)
		}
		got = append(got, p...)
		after = p[len(p)-1].ID
	}
	if len(got) != n {
		t.Fatalf("paging ListDead by %d: expected %d dead letters; got %d", page, n, len(got))
	}
	ids := map[string]bool{}
	for i := range want {
		w := want[i]
		w.ID = got[i].ID
		if diff := deadDiff(w, got[i]); diff != "" {
			t.Fatalf("dead letter %d in the listing (expected oldest first): %s", i, diff)
		}
		if ids[w.ID] {
			t.Fatalf("ID %q assigned twice", w.ID)
		}
		ids[w.ID] = true
	}
}

// testDeadDrop: DropDead removes one dead letter; what is absent is
// baton.ErrNotFound.
func testDeadDrop(t *testing.T, st store.Store) {
	ctx := t.Context()
	for i := range 3 {
		if err := st.AddDead(ctx, deadLetter(i)); err != nil {
			t.Fatalf("add dead: %v", err)
		}
	}
	l := listDead(t, st, "", 10)
	if len(l) != 3 {
		t.Fatalf("expected 3 dead letters; got %d", len(l))
	}
	drop := l[1].ID
	if err := st.DropDead(ctx, drop); err != nil {
		t.Fatalf("drop %s: %v", drop, err)
	}
	notFound := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, baton.ErrNotFound) {
			t.Errorf("%s: expected an error that is baton.ErrNotFound; got %v", what, err)
		} else if code := baton.ErrorCode(err); code != baton.NotFound {
			t.Errorf("%s: error code %q, want %q", what, code, baton.NotFound)
		}
	}
	_, err := st.Dead(ctx, drop)
	notFound("Dead of a dropped dead letter", err)
	notFound("a second DropDead", st.DropDead(ctx, drop))
	_, err = st.Dead(ctx, unique("dl-unknown-"))
	notFound("Dead of an unknown id", err)
	notFound("DropDead of an unknown id", st.DropDead(ctx, unique("dl-unknown-")))

	rest := listDead(t, st, "", 10)
	if len(rest) != 2 || rest[0].ID != l[0].ID || rest[1].ID != l[2].ID {
		got := make([]string, len(rest))
		for i, d := range rest {
			got[i] = d.ID
		}
		t.Errorf("after dropping %s: expected [%s %s] listed; got %q", drop, l[0].ID, l[2].ID, got)
	}
	for _, id := range []string{l[0].ID, l[2].ID} {
		if _, err := st.Dead(ctx, id); err != nil {
			t.Errorf("dead %s, not dropped: %v", id, err)
		}
	}
}
