package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
)

// A step's command is answered to the group its metadata names, with the
// command's routing (the run, the step) and without MetaReplyTo: the
// coordinator finds its step by the metadata, not by parsing ids, and ids
// stay derived from the input, the handler and the output's index. A
// command the service gives up on is answered with TypeStepFailed, routed
// the same way.
func TestRepliesCarryTheCommandsMetadata(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	coord, err := b.Subscribe(t.Context(), "coordinator", []string{"nothing.routed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := b.Subscribe(t.Context(), "watch", []string{"payment.*", "baton.*"})
	if err != nil {
		t.Fatal(err)
	}
	charge := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		if e.ID == "r-1/refuse#1" {
			return nil, baton.Permanent(errors.New("card declined"))
		}
		out, err := baton.NewEvent("payment.processed.v1", "", map[string]bool{"ok": true})
		return []baton.Event{out}, err
	}
	run(t, b, bus.Config{Concurrency: 1},
		baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: charge}}})

	for _, step := range []string{"charge", "refuse"} {
		cmd := orderEvent(t, "r-1/"+step+"#1", 1)
		cmd.Source, cmd.SpecVersion = "baton.flow/order", baton.SpecVersion
		meta := map[string]string{bus.MetaReplyTo: "coordinator", bus.MetaRun: "r-1", "step": step, "attempt": "1"}
		if err := b.PublishTo(t.Context(), "billing", bus.Message{Event: cmd, Meta: meta}); err != nil {
			t.Fatal(err)
		}
		d, err := coord.Receive(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{bus.MetaRun: "r-1", "step": step, "attempt": "1"}
		if !maps.Equal(d.Meta, want) {
			t.Errorf("reply to %s: metadata %v, want %v", step, d.Meta, want)
		}
		if id := event.OutputID(cmd.ID, "billing", 0); d.ID != id {
			t.Errorf("reply to %s: id %q, want %q (derived from the command)", step, d.ID, id)
		}
		wantType := "payment.processed.v1"
		if step == "refuse" {
			wantType = bus.TypeStepFailed
			var f bus.StepFailed
			if err := json.Unmarshal(d.Data, &f); err != nil || f.EventID != cmd.ID || f.Group != "billing" {
				t.Errorf("step failed data %s (%v); want the command %s and the group billing", d.Data, err, cmd.ID)
			}
		}
		if d.Type != wantType {
			t.Errorf("reply to %s: type %s, want %s", step, d.Type, wantType)
		}
		if err := coord.Ack(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	// Replies go to the coordinator only, not to the groups bound to their
	// types; both were written before the second reply was received.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if d, err := watch.Receive(ctx); err == nil {
		t.Errorf("a group bound to the reply's type received %s %s", d.Type, d.ID)
	}
}
