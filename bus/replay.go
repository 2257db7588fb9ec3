package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
)

// ReplayStore is the slice of the state store Replay uses: the dead letter,
// the inbox mark it forgets, the run a step command belongs to, and the
// journal. A store.Store will do.
type ReplayStore interface {
	Dead(ctx context.Context, id string) (store.DeadLetter, error)
	DropDead(ctx context.Context, id string) error
	Forget(ctx context.Context, group, id string) error
	Run(ctx context.Context, id string) (store.Run, error)
	Append(ctx context.Context, entries ...store.Entry) error
}

// Replay delivers a dead letter again, as it was received, to the group that
// gave up on it, with a fresh attempt count, and drops it: the group's inbox
// forgets the event first. On a transport that cannot address one group it
// is published again, and the groups that already handled it skip it by
// their inbox. A crash between the publish and
// the drop leaves the dead letter in place; replaying it again is harmless
// for the same reason.
//
// A step command of a flow run that has ended (completed, failed or
// cancelled) is refused with a baton.Conflict error and kept: performing the
// step now would charge a customer, say, for a run that no longer waits for
// the result and will never compensate it. So is a dead letter whose body
// the store cut (store.Retention.DeadBody): it would deliver another message.
func Replay(ctx context.Context, t Transport, s ReplayStore, id string) error {
	d, err := s.Dead(ctx, id)
	if err != nil {
		return err
	}
	if d.Truncated {
		return baton.Errorf(baton.Conflict, "replay dead letter "+id,
			"the store kept only the first %d of its %d bytes (dead-letter bodies are bounded), so a replay would deliver another message: read it with baton dlq show %s, publish the event again from its source, and drop it with baton dlq drop %s",
			len(d.Body), d.Size, id, id)
	}
	if err := refuseEndedStep(ctx, s, d); err != nil {
		return err
	}
	m := Message{Meta: d.Meta}
	if e, err := event.Unmarshal(d.Body); err == nil {
		m.Event = e
	} else {
		// What could not be read goes as it came, to be refused again
		// with the same reason, or handled by a runtime that has learned
		// to read it.
		m.Raw, m.Type, m.ID = d.Body, d.Type, d.EventID
		if m.Raw == nil {
			m.Raw = []byte{}
		}
	}
	// Dead-lettering marked the event as done in the group's inbox.
	if d.EventID != "" {
		if err := s.Forget(ctx, d.Group, d.EventID); err != nil {
			return fmt.Errorf("replay dead letter %s: %w", id, err)
		}
	}
	c := Commit{
		Publish: []Message{m},
		Journal: []store.Entry{{Time: time.Now(), CorrelationID: d.CorrelationID, Outcome: store.Replayed,
			EventID: d.EventID, EventType: d.Type, Group: d.Group}},
	}
	if gp, ok := t.(GroupPublisher); ok && d.Group != "" {
		if err = gp.PublishTo(ctx, d.Group, c.Publish...); err == nil {
			err = s.Append(ctx, c.Journal...)
		}
	} else if cm, ok := t.(Committer); ok {
		err = cm.Commit(ctx, c)
	} else if err = t.Publish(ctx, c.Publish...); err == nil {
		err = s.Append(ctx, c.Journal...)
	}
	if err != nil {
		return fmt.Errorf("replay dead letter %s: %w", id, err)
	}
	return s.DropDead(ctx, id)
}

// refuseEndedStep returns a baton.Conflict error when d is the command a
// flow step sent for a run that has ended. A coordinator sends a step's
// command with metadata naming its own group (MetaReplyTo) and the run
// (MetaRun); a message with both whose run is unknown is not a step
// command, and is replayed. The run may end between this look-up and the
// replay: the step is then performed and its result ignored, as a reply
// arriving late would be.
func refuseEndedStep(ctx context.Context, runs ReplayStore, d store.DeadLetter) error {
	runID := d.Meta[MetaRun]
	if d.Meta[MetaReplyTo] == "" || runID == "" {
		return nil
	}
	run, err := runs.Run(ctx, runID)
	if errors.Is(err, baton.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay dead letter %s: look up its run %s: %w", d.ID, runID, err)
	}
	if !run.Status.Terminal() {
		return nil
	}
	why := ""
	if run.Error != "" {
		why = " (" + run.Error + ")"
	}
	return baton.Errorf(baton.Conflict, "replay dead letter "+d.ID,
		"it is the %s command %s of run %s of flow %s for %s, which ended %s%s: performing the step now would not change the run; drop it with baton dlq drop %s, and start a new run of %s under a new key to try again",
		d.Type, d.EventID, run.ID, run.Flow, run.Key, run.Status, why, d.ID, run.Flow)
}
