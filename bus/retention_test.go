package bus_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// A dead letter whose body the store cut is refused by Replay, with a
// Conflict that says why and what to do, and kept; nothing is delivered.
func TestReplayRefusesATruncatedDeadLetter(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true, Retention: store.Retention{DeadBody: 64}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	sub, err := b.Subscribe(ctx, "billing", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	body := []byte(`{"specversion":"1.0","id":"ev-1","type":"order.placed.v1","source":"test","data":{"note":"` +
		strings.Repeat("x", 200) + `"}}`)
	if err := b.AddDead(ctx, store.DeadLetter{Group: "billing", Type: "order.placed.v1", EventID: "ev-1", Body: body, Reason: "boom"}); err != nil {
		t.Fatal(err)
	}
	dead, err := b.ListDead(ctx, "", 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("list dead: %v, %v", dead, err)
	}
	d := dead[0]
	if !d.Truncated || d.Size != len(body) || !bytes.Equal(d.Body, body[:64]) {
		t.Fatalf("stored dead letter: truncated %v, size %d, body %q; want truncated, size %d, the first 64 bytes", d.Truncated, d.Size, d.Body, len(body))
	}

	err = bus.Replay(ctx, b, b, d.ID)
	if baton.ErrorCode(err) != baton.Conflict {
		t.Fatalf("replay a truncated dead letter: %v (code %q); want a conflict", err, baton.ErrorCode(err))
	}
	for _, want := range []string{"64 of", "baton dlq show " + d.ID, "baton dlq drop " + d.ID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if _, err := b.Dead(ctx, d.ID); err != nil {
		t.Errorf("the dead letter after a refused replay: %v; want it kept", err)
	}
	if n, err := b.Backlog(ctx, "billing"); err != nil || n != 0 {
		t.Errorf("billing's backlog after a refused replay: %d, %v; want nothing delivered", n, err)
	}
}
