package conformance

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

// waitLimit bounds every wait for something that should happen: the next
// delivery, a condition. It is reset whenever progress is made, so a long
// backlog is not failed for being long, only for stalling.
const waitLimit = 10 * time.Second

// quietPeriod is how long a case listens to check that nothing more arrives.
const quietPeriod = 300 * time.Millisecond

// unique returns a name no other case uses: kind followed by random
// lower-case letters and digits, valid in event types, group names, queue
// and durable names alike.
func unique(kind string) string {
	return kind + strings.ToLower(rand.Text()[:12])
}

// next waits up to waitLimit for one delivery on sub.
func next(ctx context.Context, sub bus.Subscription) (bus.Delivery, error) {
	wctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	d, err := sub.Receive(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return d, fmt.Errorf("nothing delivered within %v", waitLimit)
	}
	return d, err
}

// receive waits for one delivery on sub and returns it unsettled.
func receive(t *testing.T, sub bus.Subscription, what string) bus.Delivery {
	t.Helper()
	d, err := next(t.Context(), sub)
	if err != nil {
		t.Fatalf("expected %s: %v", what, err)
	}
	return d
}

// receiveN receives n deliveries from sub, acking each when ack is set. It
// fails when the next delivery does not come within waitLimit, saying how
// many of n arrived.
func receiveN(t *testing.T, sub bus.Subscription, n int, ack bool, what string) []bus.Delivery {
	t.Helper()
	got := make([]bus.Delivery, 0, n)
	for len(got) < n {
		d, err := next(t.Context(), sub)
		if err != nil {
			t.Fatalf("expected %d deliveries of %s; received %d, then: %v", n, what, len(got), err)
		}
		got = append(got, d)
		if ack {
			if err := sub.Ack(t.Context(), d); err != nil {
				t.Fatalf("ack %s (delivery %d of %s): %v", d.ID, len(got), what, err)
			}
		}
	}
	return got
}

// expectQuiet listens on sub for quietPeriod and fails if anything arrives.
func expectQuiet(t *testing.T, sub bus.Subscription, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), quietPeriod)
	defer cancel()
	d, err := sub.Receive(ctx)
	switch {
	case err == nil:
		t.Errorf("expected no further delivery (%s); got %s id %q attempt %d", what, d.Type, d.ID, d.Attempt)
	case !errors.Is(err, context.DeadlineExceeded):
		t.Errorf("expected no further delivery (%s); Receive returned %v instead of the context's deadline error", what, err)
	}
}

// subscribe subscribes to group or fails the test.
func subscribe(t *testing.T, tr bus.Transport, group string, patterns ...string) bus.Subscription {
	t.Helper()
	sub, err := tr.Subscribe(t.Context(), group, patterns)
	if err != nil {
		t.Fatalf("subscribe %s to %q: %v", group, patterns, err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// publish publishes msgs or fails the test.
func publish(t *testing.T, tr bus.Transport, msgs ...bus.Message) {
	t.Helper()
	if err := tr.Publish(t.Context(), msgs...); err != nil {
		t.Fatalf("publish %d messages: %v", len(msgs), err)
	}
}

// message returns a message carrying a CloudEvents envelope of type typ with
// the given id, correlation id and a payload of n and pad bytes of filler.
func message(typ, id, correlation string, n, pad int) bus.Message {
	data, err := json.Marshal(struct {
		N   int    `json:"n"`
		Pad string `json:"pad,omitempty"`
	}{n, strings.Repeat("x", pad)})
	if err != nil {
		panic(err)
	}
	return bus.Message{Event: baton.Event{
		ID:              id,
		Source:          "conformance",
		SpecVersion:     baton.SpecVersion,
		Type:            typ,
		Subject:         fmt.Sprintf("subject-%d", n),
		Time:            time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		DataContentType: "application/json",
		CorrelationID:   correlation,
		Data:            data,
	}}
}

// messages returns n messages of type typ with ids prefix-00000 onwards.
func messages(typ, prefix string, n int) []bus.Message {
	msgs := make([]bus.Message, n)
	for i := range msgs {
		msgs[i] = message(typ, fmt.Sprintf("%s-%05d", prefix, i), prefix, i, 0)
	}
	return msgs
}

func ids(msgs []bus.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func deliveredIDs(ds []bus.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// sameMessage reports whether a transport handed back a message as sent:
// every attribute, the metadata, and data that is the same bytes or the
// same JSON value (a transport may re-encode it on the wire).
func sameMessage(sent, got bus.Message) bool {
	a, b := sent.Event, got.Event
	if a.ID != b.ID || a.Source != b.Source || a.SpecVersion != b.SpecVersion || a.Type != b.Type ||
		a.Subject != b.Subject || !a.Time.Equal(b.Time) || a.DataContentType != b.DataContentType ||
		a.DataSchema != b.DataSchema || a.CorrelationID != b.CorrelationID || a.CausationID != b.CausationID ||
		a.TraceParent != b.TraceParent || a.TraceState != b.TraceState || a.Hops != b.Hops || !maps.Equal(sent.Meta, got.Meta) {
		return false
	}
	return sameJSON(a.Data, b.Data)
}

// checkExactlyOnce reports, as an error, how got differs from want taken as
// a set in which every id must appear exactly once.
func checkExactlyOnce(want, got []string) error {
	expected := make(map[string]bool, len(want))
	for _, id := range want {
		expected[id] = true
	}
	count := make(map[string]int, len(got))
	var unexpected, dup []string
	for _, id := range got {
		count[id]++
		switch {
		case !expected[id]:
			unexpected = append(unexpected, id)
		case count[id] == 2:
			dup = append(dup, id)
		}
	}
	var missing []string
	for _, id := range want {
		if count[id] == 0 {
			missing = append(missing, id)
		}
	}
	if len(missing)+len(dup)+len(unexpected) == 0 {
		return nil
	}
	return fmt.Errorf("expected each of %d ids exactly once; received %d: %d missing %s, %d duplicated %s, %d unexpected %s",
		len(want), len(got), len(missing), sample(missing), len(dup), sample(dup), len(unexpected), sample(unexpected))
}

// sample shows a few of ids, enough to start debugging.
func sample(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	const show = 5
	if len(ids) <= show {
		return fmt.Sprintf("%q", ids)
	}
	return fmt.Sprintf("%q...", slices.Clone(ids[:show]))
}
