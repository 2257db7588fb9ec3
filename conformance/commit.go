package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// atomicParts returns the Committer and the store of an Atomic transport,
// skipping the case for other transports. A Committer whose test does not
// declare Atomic fails rather than skips: the runtime commits through every
// Committer it is given, so its commits must be checked.
func atomicParts(t *testing.T, tr bus.Transport, f Features) (bus.Committer, store.Store) {
	t.Helper()
	cm, ok := tr.(bus.Committer)
	if !f.Atomic {
		if ok {
			t.Fatalf("transport %T implements bus.Committer, through which the runtime applies every commit, but its test does not declare Features.Atomic; declare it so that these cases check its commits", tr)
		}
		t.Skip("the backend's test does not declare Features.Atomic")
	}
	if !ok {
		t.Fatalf("the test declares Features.Atomic but transport %T does not implement bus.Committer", tr)
	}
	st, ok := tr.(store.Store)
	if !ok {
		t.Fatalf("the test declares Features.Atomic but transport %T is not a store.Store; the suite checks what a Commit wrote through the transport value itself", tr)
	}
	return cm, st
}

// handling is the set-up of every Commit case: a group consuming input
// events, a group observing outputs, and one published input.
type handling struct {
	in, out     string // event types
	group       string // consumes in
	observer    string // consumes out
	sub, watch  bus.Subscription
	correlation string
	input       bus.Message
	cm          bus.Committer
	st          store.Store
	tr          bus.Transport
	journalTime time.Time
}

func newHandling(t *testing.T, tr bus.Transport, f Features) *handling {
	t.Helper()
	cm, st := atomicParts(t, tr, f)
	h := &handling{
		in:          unique("cf") + ".input.v1",
		out:         unique("cf") + ".output.v1",
		group:       unique("handler-"),
		observer:    unique("observer-"),
		correlation: unique("corr-"),
		cm:          cm,
		st:          st,
		tr:          tr,
		journalTime: time.Now().UTC().Truncate(time.Millisecond),
	}
	h.sub = subscribe(t, tr, h.group, h.in)
	h.watch = subscribe(t, tr, h.observer, h.out)
	h.input = message(h.in, unique("in-"), h.correlation, 1, 0)
	return h
}

func (h *handling) outputs(d bus.Delivery) []bus.Message {
	return []bus.Message{
		message(h.out, d.ID+"-out-0", h.correlation, 10, 0),
		message(h.out, d.ID+"-out-1", h.correlation, 11, 0),
	}
}

func (h *handling) entry(d bus.Delivery, outcome store.Outcome, caused []string) store.Entry {
	return store.Entry{
		Time:          h.journalTime,
		CorrelationID: h.correlation,
		Outcome:       outcome,
		EventID:       d.ID,
		EventType:     d.Type,
		Subject:       "subject-1",
		Source:        "conformance",
		Group:         h.group,
		Attempt:       d.Attempt,
		Duration:      1500 * time.Microsecond,
		Caused:        caused,
	}
}

// handled returns the Commit the runtime makes when a handler succeeds.
func (h *handling) handled(d *bus.Delivery) bus.Commit {
	outs := h.outputs(*d)
	return bus.Commit{
		Group:    h.group,
		Delivery: d,
		Publish:  outs,
		Handled:  d.ID,
		Journal:  []store.Entry{h.entry(*d, store.Handled, ids(outs))},
	}
}

// settled checks that the group's deliveries were all settled: a new
// consumer, after the current one closes, receives nothing.
func (h *handling) settled(t *testing.T, what string) {
	t.Helper()
	if err := h.sub.Close(); err != nil {
		t.Fatalf("close consumer: %v", err)
	}
	next := subscribe(t, h.tr, h.group, h.in)
	expectQuiet(t, next, what)
	h.sub = next
}

// history returns the journal of the case's correlation id.
func (h *handling) history(t *testing.T) []store.Entry {
	t.Helper()
	hist, err := h.st.History(t.Context(), h.correlation)
	if err != nil {
		t.Fatalf("history %s: %v", h.correlation, err)
	}
	return hist
}

func (h *handling) seen(t *testing.T, id string) bool {
	t.Helper()
	ok, err := h.st.Seen(t.Context(), h.group, id)
	if err != nil {
		t.Fatalf("seen %s %s: %v", h.group, id, err)
	}
	return ok
}

// testCommitHandled: one Commit acks the delivery, publishes the outputs,
// marks the inbox and appends the journal.
func testCommitHandled(t *testing.T, tr bus.Transport, f Features) {
	h := newHandling(t, tr, f)
	publish(t, tr, h.input)
	d := receive(t, h.sub, "the input")
	c := h.handled(&d)
	if err := h.cm.Commit(t.Context(), c); err != nil {
		t.Fatalf("commit: %v", err)
	}

	got := receiveN(t, h.watch, len(c.Publish), true, "the committed outputs")
	if err := checkExactlyOnce(ids(c.Publish), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		for _, m := range c.Publish {
			if m.ID == o.ID && (!sameMessage(m, o.Message) || o.Type != m.Type || o.Attempt != 1) {
				t.Errorf("output %s: type %q attempt %d, body same: %v; want type %q attempt 1 and the body committed",
					o.ID, o.Type, o.Attempt, sameMessage(m, o.Message), m.Type)
			}
		}
	}
	expectQuiet(t, h.watch, "outputs are published once")
	if !h.seen(t, d.ID) {
		t.Errorf("expected %s marked in %s's inbox after the commit", d.ID, h.group)
	}
	hist := h.history(t)
	if len(hist) != 1 {
		t.Fatalf("expected the one committed journal entry; history has %d: %+v", len(hist), hist)
	}
	if diff := entryDiff(c.Journal[0], hist[0]); diff != "" {
		t.Errorf("journal entry differs from the one committed: %s", diff)
	}
	if hist[0].Seq == 0 {
		t.Errorf("committed journal entry has Seq 0; expected one assigned")
	}
	h.settled(t, "the commit acked the input")
}

// testCommitDuplicate: a second delivery of an event the group already
// handled publishes nothing and journals a duplicate.
func testCommitDuplicate(t *testing.T, tr bus.Transport, f Features) {
	h := newHandling(t, tr, f)
	// The same event published twice, as a producer retrying would.
	publish(t, tr, h.input)
	publish(t, tr, h.input)

	first := receive(t, h.sub, "the first copy of the input")
	c1 := h.handled(&first)
	if err := h.cm.Commit(t.Context(), c1); err != nil {
		t.Fatalf("commit the first copy: %v", err)
	}
	second := receive(t, h.sub, "the second copy of the input (published twice with one id)")
	if second.ID != first.ID {
		t.Fatalf("expected a second copy of %s; got %q", first.ID, second.ID)
	}
	c2 := h.handled(&second)
	if err := h.cm.Commit(t.Context(), c2); !errors.Is(err, bus.ErrDuplicate) {
		t.Fatalf("commit the second copy: got %v, want bus.ErrDuplicate", err)
	}

	got := receiveN(t, h.watch, len(c1.Publish), true, "the outputs of the first copy")
	if err := checkExactlyOnce(ids(c1.Publish), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, h.watch, "the duplicate's outputs are dropped")

	hist := h.history(t)
	count := map[store.Outcome]int{}
	for _, e := range hist {
		count[e.Outcome]++
	}
	if len(hist) != 2 || count[store.Handled] != 1 || count[store.Duplicate] != 1 {
		t.Fatalf("expected history [handled, duplicate]; got %d entries: %s", len(hist), outcomes(hist))
	}
	if hist[0].Outcome != store.Handled {
		t.Errorf("expected the handled entry before the duplicate; got %s", outcomes(hist))
	}
	dup := hist[1]
	if dup.EventID != first.ID || dup.Group != h.group {
		t.Errorf("duplicate entry is for event %q in group %q; expected %q in %q", dup.EventID, dup.Group, first.ID, h.group)
	}
	if !h.seen(t, first.ID) {
		t.Errorf("expected %s marked in %s's inbox", first.ID, h.group)
	}
	h.settled(t, "both copies were acked")
}

// testCommitRetry: a Commit with Retry nacks the delivery.
func testCommitRetry(t *testing.T, tr bus.Transport, f Features) {
	h := newHandling(t, tr, f)
	publish(t, tr, h.input)
	d := receive(t, h.sub, "the input")
	failed := h.entry(d, store.Failed, nil)
	failed.Error = "conformance: try again"
	if err := h.cm.Commit(t.Context(), bus.Commit{
		Group:    h.group,
		Delivery: &d,
		Retry:    true,
		Journal:  []store.Entry{failed},
	}); err != nil {
		t.Fatalf("commit a retry: %v", err)
	}
	r := receive(t, h.sub, "the input again after a retry commit")
	if r.ID != d.ID || r.Attempt != d.Attempt+1 {
		t.Fatalf("expected %s attempt %d; got %q attempt %d", d.ID, d.Attempt+1, r.ID, r.Attempt)
	}
	if h.seen(t, d.ID) {
		t.Errorf("a retry commit without Handled marked %s in the inbox", d.ID)
	}
	hist := h.history(t)
	if len(hist) != 1 {
		t.Fatalf("expected the failed entry alone in the history; got %s", outcomes(hist))
	}
	if diff := entryDiff(failed, hist[0]); diff != "" {
		t.Errorf("journal entry differs from the one committed: %s", diff)
	}

	if err := h.cm.Commit(t.Context(), h.handled(&r)); err != nil {
		t.Fatalf("commit the second attempt: %v", err)
	}
	receiveN(t, h.watch, 2, true, "the outputs of the second attempt")
	h.settled(t, "the second attempt was committed")
}

// testCommitDead: a Commit with Dead stores the dead letter and acks.
func testCommitDead(t *testing.T, tr bus.Transport, f Features) {
	h := newHandling(t, tr, f)
	publish(t, tr, h.input)
	d := receive(t, h.sub, "the input")
	dl := store.DeadLetter{
		Group:         h.group,
		Type:          d.Type,
		Body:          []byte(`{"conformance":"the message as received"}`),
		EventID:       d.ID,
		CorrelationID: h.correlation,
		Attempts:      d.Attempt,
		Reason:        "conformance: gave up",
		Time:          h.journalTime,
	}
	entry := h.entry(d, store.DeadLettered, nil)
	entry.Error = dl.Reason
	if err := h.cm.Commit(t.Context(), bus.Commit{
		Group:    h.group,
		Delivery: &d,
		Dead:     &dl,
		Handled:  d.ID,
		Journal:  []store.Entry{entry},
	}); err != nil {
		t.Fatalf("commit a dead letter: %v", err)
	}

	list, err := h.st.ListDead(t.Context(), "", 10)
	if err != nil {
		t.Fatalf("list dead: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("expected the one committed dead letter; the store lists %d", len(list))
	}
	if list[0].ID == "" {
		t.Errorf("committed dead letter has no ID; expected the store to assign one")
	}
	want := dl
	want.ID = list[0].ID
	if diff := deadDiff(want, list[0]); diff != "" {
		t.Errorf("dead letter differs from the one committed: %s", diff)
	}
	if !h.seen(t, d.ID) {
		t.Errorf("dead-lettering did not mark %s in the inbox; a publisher's retry of it would be dead-lettered twice", d.ID)
	}
	hist := h.history(t)
	if len(hist) != 1 || hist[0].Outcome != store.DeadLettered {
		t.Errorf("expected the dead-lettered entry alone in the history; got %s", outcomes(hist))
	}
	h.settled(t, "the dead-letter commit acked the input")

	// The same event published again is a duplicate, not a second dead
	// letter.
	publish(t, tr, h.input)
	again := receive(t, h.sub, "the input published again")
	if err := h.cm.Commit(t.Context(), bus.Commit{
		Group:    h.group,
		Delivery: &again,
		Dead:     &dl,
		Handled:  again.ID,
		Journal:  []store.Entry{entry},
	}); !errors.Is(err, bus.ErrDuplicate) {
		t.Fatalf("commit the copy as a dead letter: got %v, want bus.ErrDuplicate", err)
	}
	if list, err := h.st.ListDead(t.Context(), "", 10); err != nil || len(list) != 1 {
		t.Errorf("expected the copy to be settled as a duplicate, one dead letter in all; ListDead: %d, %v", len(list), err)
	}
	h.settled(t, "the copy was acked")
	if hist := h.history(t); len(hist) != 2 || hist[1].Outcome != store.Duplicate {
		t.Errorf("expected [dead-lettered duplicate]; got %s", outcomes(hist))
	}
}

// testCommitPublish: a Commit without a delivery is a plain publish with its
// journal, the coordinator's outbox.
func testCommitPublish(t *testing.T, tr bus.Transport, f Features) {
	h := newHandling(t, tr, f)
	outs := h.outputs(bus.Delivery{Message: bus.Message{Event: baton.Event{ID: unique("cmd-")}}})
	var entries []store.Entry
	for _, m := range outs {
		entries = append(entries, store.Entry{
			Time: h.journalTime, CorrelationID: h.correlation, Outcome: store.Published,
			EventID: m.ID, EventType: m.Type, Source: "conformance",
		})
	}
	if err := h.cm.Commit(t.Context(), bus.Commit{Publish: outs, Journal: entries}); err != nil {
		t.Fatalf("commit a plain publish: %v", err)
	}
	got := receiveN(t, h.watch, len(outs), true, "the published commands")
	if err := checkExactlyOnce(ids(outs), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, h.watch, "each published once")
	hist := h.history(t)
	if len(hist) != len(entries) {
		t.Fatalf("expected %d published entries; got %s", len(entries), outcomes(hist))
	}
	for i := range entries {
		if diff := entryDiff(entries[i], hist[i]); diff != "" {
			t.Errorf("journal entry %d: %s", i, diff)
		}
	}
}

func outcomes(hist []store.Entry) string {
	s := "["
	for i, e := range hist {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %s", e.Outcome, e.EventID)
	}
	return s + "]"
}

// testCommitReplyTo: a Commit with ReplyTo sends its outputs to that group
// only, not to the groups bound to their type; a group never subscribed is
// declared and keeps them for its first consumer.
func testCommitReplyTo(t *testing.T, tr bus.Transport, f Features) {
	h := newHandling(t, tr, f)
	coordinator := unique("coordinator-")
	coord := subscribe(t, tr, coordinator, unique("cf")+".unrelated.v1")

	publish(t, tr, h.input)
	d := receive(t, h.sub, "the input")
	c := h.handled(&d)
	c.ReplyTo = coordinator
	if err := h.cm.Commit(t.Context(), c); err != nil {
		t.Fatalf("commit with ReplyTo %s: %v", coordinator, err)
	}
	got := receiveN(t, coord, len(c.Publish), true, "the outputs, in the ReplyTo group (bound to another type)")
	if err := checkExactlyOnce(ids(c.Publish), deliveredIDs(got)); err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		for _, m := range c.Publish {
			if m.ID == o.ID && (!sameMessage(m, o.Message) || o.Type != m.Type || o.Attempt != 1) {
				t.Errorf("reply %s: type %q attempt %d, body same: %v; want type %q attempt 1 and the body committed",
					o.ID, o.Type, o.Attempt, sameMessage(m, o.Message), m.Type)
			}
		}
	}
	if !h.seen(t, d.ID) {
		t.Errorf("expected %s marked in %s's inbox after the commit with ReplyTo", d.ID, h.group)
	}
	expectQuiet(t, h.watch, "replies go to the ReplyTo group only, not to the group bound to their type")
	expectQuiet(t, coord, "each reply once")
	h.settled(t, "the commit with ReplyTo acked the input")

	// To a group that was never subscribed: it is declared and keeps them.
	fresh := unique("replies-")
	second := message(h.in, unique("in-"), h.correlation, 2, 0)
	publish(t, tr, second)
	d2 := receive(t, h.sub, "the second input")
	c2 := h.handled(&d2)
	c2.ReplyTo = fresh
	if err := h.cm.Commit(t.Context(), c2); err != nil {
		t.Fatalf("commit with ReplyTo %s, a group never subscribed: %v", fresh, err)
	}
	expectQuiet(t, h.watch, "replies to a new group do not reach the group bound to their type")
	expectQuiet(t, coord, "replies to another group do not reach this one")
	late := subscribe(t, tr, fresh, unique("cf")+".unrelated.v1")
	got = receiveN(t, late, len(c2.Publish), true, "the replies kept for the ReplyTo group, by its first consumer")
	if err := checkExactlyOnce(ids(c2.Publish), deliveredIDs(got)); err != nil {
		t.Fatalf("replies to %s, subscribed after the commit: %v", fresh, err)
	}
	expectQuiet(t, late, "each reply once")
}
