package embedded

import (
	"bytes"
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// The writer is the only goroutine that writes to pebble. It gathers every
// request waiting into one batch, hands out sequence numbers in order,
// applies the batch without waiting for the WAL fsync, and passes it on to
// the syncer, which waits for the fsync, publishes the new sequence horizon
// and runs the requests' hooks in order. Batches therefore become visible and
// durable in sequence order while the next batch is already being built.

// maxRound caps the requests gathered into one batch.
const maxRound = 2048

// request is one write: fn adds operations to the round's batch; after the
// batch is durable, hook (if fn set it) runs and done receives the error.
type request struct {
	fn   func(*round) error
	hook func()
	done chan error
}

// round is the batch being built.
type round struct {
	b       *Backend
	number  uint64 // rounds are numbered from 1 in the order they are applied
	batch   *pebble.Batch
	pending map[string][]byte // keys written in this round that fn may read back
	last    uint64            // last sequence number handed out
	req     *request
}

// recentRounds is how many applied rounds the writer remembers the tracked
// writes of; see readAfter.
const recentRounds = 64

// recentWrites are the tracked keys one applied round wrote (nil: deleted).
// Only the writer goroutine uses them.
type recentWrites struct {
	round uint64
	keys  map[string][]byte
}

// read reads k from the database outside the writer, and returns the number
// of the last round applied before the read: readAfter completes it.
func (b *Backend) read(k []byte) (v []byte, ok bool, pre uint64, err error) {
	done, err := b.reader()
	if err != nil {
		return nil, false, 0, err
	}
	defer done()
	pre = b.rounds.Load()
	v, closer, err := b.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, pre, nil
	}
	if err != nil {
		return nil, false, pre, unavailable("read", err)
	}
	v = bytes.Clone(v)
	return v, true, pre, closer.Close()
}

// readAfter returns tracked key k as of this round, given (v, ok) read from
// the database after round pre was applied: the writes of this round and of
// the rounds since pre take precedence. Reads thus stay out of the writer,
// which only consults its memory, unless pre is too old for it to remember.
func (r *round) readAfter(k []byte, pre uint64, v []byte, ok bool) ([]byte, bool, error) {
	if w, hit := r.pending[string(k)]; hit {
		return w, w != nil, nil
	}
	if r.number-pre > recentRounds {
		return r.get(k)
	}
	for n := r.number - 1; n > pre; n-- {
		m := &r.b.recent[n%recentRounds]
		if m.round != n {
			continue
		}
		if w, hit := m.keys[string(k)]; hit {
			return w, w != nil, nil
		}
	}
	return v, ok, nil
}

func (r *round) nextSeq() uint64 {
	r.last++
	return r.last
}

func (r *round) set(k, v []byte) error { return r.batch.Set(k, v, nil) }

func (r *round) delete(k []byte) error { return r.batch.Delete(k, nil) }

// consume deletes a key written exactly once and never overwritten (queue
// and retry entries, whose keys hold a fresh sequence number). A single
// delete and the write it deletes annihilate when they meet in a flush or a
// compaction, so a message consumed soon after it was written costs the
// LSM nothing beyond the memtable.
func (r *round) consume(k []byte) error { return r.batch.SingleDelete(k, nil) }

// setTracked and deleteTracked record the write so get sees it.
func (r *round) setTracked(k, v []byte) error {
	r.pending[string(k)] = v
	return r.batch.Set(k, v, nil)
}

func (r *round) deleteTracked(k []byte) error {
	r.pending[string(k)] = nil
	return r.batch.Delete(k, nil)
}

// get reads k as of this round: tracked writes of the round first, then the
// database (which already shows the rounds applied before it).
func (r *round) get(k []byte) ([]byte, bool, error) {
	if v, ok := r.pending[string(k)]; ok {
		return v, v != nil, nil
	}
	v, closer, err := r.b.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v = append([]byte(nil), v...)
	return v, true, closer.Close()
}

// after registers a hook to run once the round is durable.
func (r *round) after(fn func()) {
	prev := r.req.hook
	if prev == nil {
		r.req.hook = fn
		return
	}
	r.req.hook = func() { prev(); fn() }
}

// applied is a batch waiting for its fsync.
type applied struct {
	batch *pebble.Batch
	last  uint64
	reqs  []*request
	err   error
}

var syncOpts = &pebble.WriteOptions{Sync: true}

// write hands fn to the writer and waits until its round is durable.
func (b *Backend) write(fn func(*round) error) error { return <-b.submit(fn) }

// submit hands fn to the writer and returns at once; the channel receives
// fn's error, or nil once its round is durable. Requests are applied in the
// order they were submitted.
func (b *Backend) submit(fn func(*round) error) <-chan error {
	done := make(chan error, 1)
	if f := b.failure.Load(); f != nil {
		done <- f
		return done
	}
	b.writing.RLock()
	if b.writesClosed {
		b.writing.RUnlock()
		done <- errClosed
		return done
	}
	b.writes.Add(1) // Close waits for it
	b.writing.RUnlock()
	b.requests <- &request{fn: fn, done: done}
	return done
}

// finish ends a request: its submitter learns err.
func (b *Backend) finish(req *request, err error) {
	req.done <- err
	b.writes.Done()
}

func (b *Backend) runWriter(last uint64) {
	defer close(b.toSync)
	reqs := make([]*request, 0, maxRound)
	for {
		first, open := <-b.requests
		if !open {
			return
		}
		if f := b.failure.Load(); f != nil {
			b.finish(first, f)
			continue
		}
		reqs = append(reqs[:0], first)
	gather:
		for len(reqs) < maxRound {
			select {
			case req := <-b.requests:
				reqs = append(reqs, req)
			default:
				break gather
			}
		}
		number := b.rounds.Load() + 1
		r := &round{b: b, number: number, batch: b.db.NewBatch(), pending: make(map[string][]byte), last: last}
		ok := make([]*request, 0, len(reqs))
		var roundErr error
		for _, req := range reqs {
			r.req = req
			mark, seq := r.batch.Len(), r.last
			err := req.fn(r)
			switch {
			case err == nil:
				ok = append(ok, req)
			case r.batch.Len() == mark && r.last == seq:
				// Refused before writing anything: bad input.
				req.hook = nil
				b.finish(req, err)
			default:
				// Failed half-way (a read error): the round cannot be
				// trusted, so none of it is written.
				roundErr = err
				ok = append(ok, req)
			}
		}
		a := &applied{batch: r.batch, last: r.last, reqs: ok, err: roundErr}
		if a.err == nil && r.last != last {
			a.err = r.batch.Set(metaKey, appendU64(nil, r.last), nil)
		}
		if a.err == nil {
			if err := b.db.ApplyNoSyncWait(r.batch, syncOpts); err != nil {
				a.err = b.fail(err)
			}
		}
		if a.err != nil {
			clear(b.revs) // some were set by writes that were not made
		}
		if a.err == nil {
			last = r.last
			b.recent[number%recentRounds] = recentWrites{round: number, keys: r.pending}
			b.rounds.Store(number)
		} else {
			r.batch.Close()
			a.batch = nil
		}
		b.toSync <- a
	}
}

func (b *Backend) runSyncer() {
	defer close(b.synced)
	for a := range b.toSync {
		err := a.err
		if a.batch != nil {
			if err = a.batch.SyncWait(); err != nil {
				err = b.fail(err)
			}
			a.batch.Close()
		}
		if f := b.failure.Load(); err == nil && f != nil {
			err = f // a round written before an earlier one's fsync failed
		}
		if err == nil {
			b.horizon.Store(a.last)
			for _, req := range a.reqs {
				if req.hook != nil {
					req.hook()
				}
			}
		} else if f := b.failure.Load(); f == nil || err != error(f) {
			err = unavailable("write", err)
		}
		for _, req := range a.reqs {
			b.finish(req, err)
		}
	}
}
