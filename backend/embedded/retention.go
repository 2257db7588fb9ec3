package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/cockroachdb/pebble/v2"
)

var _ store.Sweeper = (*Backend)(nil)

// sweepBatch is how many keys one write of a sweep deletes.
const sweepBatch = 1000

// Retention is the backend's, defaults applied.
func (b *Backend) Retention() store.Retention { return b.cfg.Retention }

// Swept is what the sweeps removed since Open.
func (b *Backend) Swept() store.Swept { return b.sweeps.Total() }

// Sweep removes the journal entries, ended runs and dead letters older than
// the retention at now, and the oldest dead letters beyond the cap.
func (b *Backend) Sweep(ctx context.Context, now time.Time) (store.Swept, error) {
	return b.sweeps.Sweep(ctx, now)
}

// stamped is what a sweep reads of a journal entry or a dead letter.
type stamped struct {
	Time          time.Time `json:"time"`
	CorrelationID string    `json:"correlationid"`
}

// oldest returns the keys of kind, oldest first, up to sweepBatch of them,
// while old says they are, with their values; done is true when it
// stopped at a key that is not old or at the end.
func (b *Backend) oldest(kind byte, old func(k, v []byte) bool) (keys [][]byte, vals [][]byte, done bool, err error) {
	finish, err := b.reader()
	if err != nil {
		return nil, nil, true, err
	}
	defer finish()
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		return nil, nil, true, unavailable("sweep", err)
	}
	defer iter.Close()
	done = true
	for iter.First(); iter.Valid(); iter.Next() {
		if len(keys) == sweepBatch {
			done = false
			break
		}
		if !old(iter.Key(), iter.Value()) {
			break
		}
		keys = append(keys, append([]byte(nil), iter.Key()...))
		vals = append(vals, append([]byte(nil), iter.Value()...))
	}
	return keys, vals, done, iter.Error()
}

// entryStamp is stampOf for a journal entry, which is kept in the binary
// encoding (store.AppendEntry) or, written before it, as JSON.
func entryStamp(v []byte) stamped {
	e, _ := store.ParseEntry(0, v) // an entry that does not decode has no time: it is old
	return stamped{Time: e.Time, CorrelationID: e.CorrelationID}
}

func stampOf(v []byte) stamped {
	var s stamped
	_ = json.Unmarshal(v, &s) // an entry that does not decode has no time: it is old
	return s
}

func (b *Backend) sweepJournal(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for ctx.Err() == nil {
		keys, vals, done, err := b.oldest(kindJournal, func(_, v []byte) bool { return entryStamp(v).Time.Before(cutoff) })
		if err != nil || len(keys) == 0 {
			return total, err
		}
		err = b.write(func(r *round) error {
			for i, k := range keys {
				if err := r.delete(k); err != nil {
					return err
				}
				if corr := entryStamp(vals[i]).CorrelationID; corr != "" {
					if err := r.delete(corrKey(corr, uint64FromKey(k))); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(keys)
		if done {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// dropDead deletes the dead letters of keys that are still there, and
// counts them.
func (b *Backend) dropDead(keys [][]byte) (int, error) {
	n := 0
	err := b.write(func(r *round) error {
		n = 0
		for _, k := range keys {
			if _, ok, err := r.get(k); err != nil {
				return err
			} else if !ok {
				continue // dropped meanwhile
			}
			if err := r.deleteTracked(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func (b *Backend) sweepDeadBefore(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for ctx.Err() == nil {
		keys, _, done, err := b.oldest(kindDead, func(_, v []byte) bool { return stampOf(v).Time.Before(cutoff) })
		if err != nil || len(keys) == 0 {
			return total, err
		}
		n, err := b.dropDead(keys)
		total += n
		if err != nil || done {
			return total, err
		}
	}
	return total, ctx.Err()
}

func (b *Backend) sweepDeadOverCap(ctx context.Context) (int, error) {
	limit := b.cfg.Retention.DeadCap
	if limit < 0 {
		return 0, nil
	}
	count, err := b.countKeys(kindDead)
	if err != nil {
		return 0, err
	}
	total := 0
	for over := count - limit; over > 0 && ctx.Err() == nil; {
		n := 0
		keys, _, _, err := b.oldest(kindDead, func(_, _ []byte) bool { n++; return n <= over })
		if err != nil || len(keys) == 0 {
			return total, err
		}
		dropped, err := b.dropDead(keys)
		total += dropped
		if err != nil {
			return total, err
		}
		over -= len(keys)
	}
	return total, ctx.Err()
}

func (b *Backend) countKeys(kind byte) (int, error) {
	finish, err := b.reader()
	if err != nil {
		return 0, err
	}
	defer finish()
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		return 0, unavailable("sweep", err)
	}
	defer iter.Close()
	n := 0
	for iter.First(); iter.Valid(); iter.Next() {
		n++
	}
	return n, iter.Error()
}

// sweepRuns deletes the ended runs last updated before cutoff, with their
// indexes: it walks the runs created before cutoff, oldest first (a run
// cannot have ended before it was created).
func (b *Backend) sweepRuns(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	from := []byte{kindCreated}
	for ctx.Err() == nil {
		olds, next, err := b.endedRuns(from, createdKey(cutoff, ""), cutoff)
		if err != nil {
			return total, err
		}
		if len(olds) > 0 {
			n, err := b.deleteRuns(olds)
			total += n
			if err != nil {
				return total, err
			}
		}
		if next == nil {
			return total, nil
		}
		from = next
	}
	return total, ctx.Err()
}

// endedRuns reads up to sweepBatch runs from the creation index between lo
// and hi and returns those that ended before cutoff, and where to go on
// (nil at the end).
func (b *Backend) endedRuns(lo, hi []byte, cutoff time.Time) ([]store.Run, []byte, error) {
	finish, err := b.reader()
	if err != nil {
		return nil, nil, err
	}
	defer finish()
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, unavailable("sweep", err)
	}
	defer iter.Close()
	var olds []store.Run
	n := 0
	for iter.First(); iter.Valid(); iter.Next() {
		if n == sweepBatch {
			return olds, append([]byte(nil), iter.Key()...), iter.Error()
		}
		n++
		r, err := b.run(string(iter.Key()[9:]))
		if errors.Is(err, baton.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if r.Status.Terminal() && r.Updated.Before(cutoff) {
			olds = append(olds, r)
		}
	}
	return olds, nil, iter.Error()
}

// deleteRuns deletes runs and their index keys, each unless it was saved
// since it was read.
func (b *Backend) deleteRuns(runs []store.Run) (int, error) {
	n := 0
	err := b.write(func(w *round) error {
		n = 0
		for _, r := range runs {
			rev, indexed, ok, err := w.revision(r.ID)
			if err != nil {
				return err
			}
			if !ok || rev != r.Rev {
				continue
			}
			if id, ok, err := w.get(runBizKey(r.Flow, r.Key)); err != nil {
				return err
			} else if ok && string(id) == r.ID {
				if err := w.deleteTracked(runBizKey(r.Flow, r.Key)); err != nil {
					return err
				}
			}
			for _, k := range [][]byte{runKey(r.ID), runRevKey(r.ID)} {
				if err := w.deleteTracked(k); err != nil {
					return err
				}
			}
			for _, k := range [][]byte{createdKey(r.Created, r.ID), flowKey(r.Flow, r.Created, r.ID)} {
				if err := w.delete(k); err != nil {
					return err
				}
			}
			if !indexed.IsZero() {
				if err := w.delete(wakeKey(indexed, r.ID)); err != nil {
					return err
				}
			}
			delete(w.b.revs, r.ID)
			n++
		}
		return nil
	})
	return n, err
}
