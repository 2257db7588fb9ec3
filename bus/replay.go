package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/batonhq/baton/store"
)

// Replay delivers a dead letter again, as it was received, to the group that
// gave up on it, with a fresh attempt count, and drops it: the group's inbox
// forgets the event first. On a transport that cannot address one group it
// is published again, and the groups that already handled it skip it by
// their inbox. A crash between the publish and
// the drop leaves the dead letter in place; replaying it again is harmless
// for the same reason.
func Replay(ctx context.Context, t Transport, s store.Store, id string) error {
	d, err := s.Dead(ctx, id)
	if err != nil {
		return err
	}
	// Dead-lettering marked the event as done in the group's inbox.
	if d.EventID != "" {
		if err := s.Forget(ctx, d.Group, d.EventID); err != nil {
			return fmt.Errorf("replay dead letter %s: %w", id, err)
		}
	}
	c := Commit{
		Publish: []Message{{Type: d.Type, ID: d.EventID, Body: d.Body}},
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
