package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// A dead-lettered step command is replayed while its run is under way, and
// refused, with a Conflict that says what to do, once the run has ended: the
// step would be performed for a run that no longer waits for it.
func TestReplayRefusesTheStepOfAnEndedRun(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	var fixed atomic.Bool
	billing := newRecorder()
	charge := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		if !fixed.Load() {
			return nil, baton.Permanent(errors.New("payment provider is down"))
		}
		return billing.handle(ctx, e)
	}
	rt := run(t, b, bus.Config{Concurrency: 1},
		baton.Service{Name: "billing", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: charge}}})

	statuses := []store.RunStatus{store.RunRunning, store.RunCompensating, store.RunCompleted, store.RunFailed, store.RunCancelled}
	commands := map[store.RunStatus]string{}
	for i, st := range statuses {
		r := store.Run{ID: fmt.Sprintf("r-%d", i), Flow: "order", Version: 1, Key: fmt.Sprintf("o-%d", i),
			Status: store.RunRunning, Created: time.Now()}
		if _, _, err := b.CreateRun(t.Context(), r, nil); err != nil {
			t.Fatal(err)
		}
		// As a coordinator sends it: caused by the run, with metadata that
		// names the run and the coordinator's group to reply to.
		cmd := orderEvent(t, r.ID+"/charge#1", i)
		cmd.CorrelationID, cmd.CausationID = r.Key, r.ID
		cmd.Source, cmd.SpecVersion = "baton.flow/order", baton.SpecVersion
		meta := map[string]string{bus.MetaReplyTo: "coordinator", bus.MetaRun: r.ID, "step": "charge", "attempt": "1"}
		if err := b.PublishTo(t.Context(), "billing", bus.Message{Event: cmd, Meta: meta}); err != nil {
			t.Fatal(err)
		}
		commands[st] = cmd.ID
	}
	dead := waitDead(t, b, len(statuses))
	byEvent := map[string]store.DeadLetter{}
	for _, d := range dead {
		byEvent[d.EventID] = d
	}
	for i, st := range statuses {
		if st == store.RunRunning {
			continue
		}
		r, err := b.Run(t.Context(), fmt.Sprintf("r-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		r.Status = st
		if st == store.RunFailed {
			r.Error = "charge: payment provider is down"
		}
		if _, err := b.SaveRun(t.Context(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
	fixed.Store(true)

	for i, st := range statuses {
		d := byEvent[commands[st]]
		err := bus.Replay(t.Context(), b, b, d.ID)
		if !st.Terminal() {
			if err != nil {
				t.Errorf("replay the step of a %s run: %v, want it replayed", st, err)
			}
			continue
		}
		if baton.ErrorCode(err) != baton.Conflict {
			t.Errorf("replay the step of a %s run: %v (code %q), want a conflict", st, err, baton.ErrorCode(err))
			continue
		}
		for _, want := range []string{fmt.Sprintf("r-%d", i), string(st), "baton dlq drop " + d.ID, "new run"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal of the step of a %s run %q does not say %q", st, err, want)
			}
		}
		if st == store.RunFailed && !strings.Contains(err.Error(), "payment provider is down") {
			t.Errorf("refusal of the step of a failed run %q does not say why the run failed", err)
		}
		if _, err := b.Dead(t.Context(), d.ID); err != nil {
			t.Errorf("dead letter of the step of a %s run after a refused replay: %v, want it kept", st, err)
		}
	}
	// One consumer: the replays accepted are handled in order, and a step
	// of an ended run, had it been sent, before the sentinel.
	billing.wait(t, commands[store.RunRunning], commands[store.RunCompensating])
	publish(t, rt, orderEvent(t, "replay-sentinel", 9))
	billing.wait(t, "replay-sentinel")
	for _, st := range statuses {
		want := 1
		if st.Terminal() {
			want = 0
		}
		if n := billing.times(commands[st]); n != want {
			t.Errorf("billing handled the step of a %s run %d times after the replays, want %d", st, n, want)
		}
	}
}
