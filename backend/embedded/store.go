package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/cockroachdb/pebble/v2"
)

// Seen reports whether group handled id within the retention window. A
// miss is remembered for the commit that settles id, which then needs no
// second read (see misses).
func (b *Backend) Seen(ctx context.Context, group, id string) (bool, error) {
	k := inboxKey(group, id)
	v, ok, pre, err := b.read(k)
	if err != nil {
		return false, err
	}
	if !ok {
		b.misses.put(k, pre)
	}
	return ok && !expired(v, b.now()), nil
}

// misses are the inbox keys Seen found absent, with the round read after:
// the runtime asks Seen before a handler runs, and the handler's commit
// then checks the same key again, atomically with its writes. The commit
// takes the miss instead of reading again, and the writer completes it with
// the writes since that round, as it does a read of its own (readAfter). An
// entry lives from the handler's start to its commit; a bounded number are
// kept, and without one the commit reads.
type misses struct {
	mu sync.Mutex
	m  map[string]uint64
}

// maxMisses bounds the misses kept: well above the deliveries that can be
// in hand at once, so that it fills only with the misses of Seen calls no
// commit followed (other callers than the runtime). It is then emptied:
// the commits of the misses dropped read the inbox again.
const maxMisses = 1 << 16

func (m *misses) put(k []byte, pre uint64) {
	m.mu.Lock()
	if m.m == nil || len(m.m) >= maxMisses {
		m.m = make(map[string]uint64)
	}
	m.m[string(k)] = pre
	m.mu.Unlock()
}

// take returns and forgets the round after which k was found absent.
func (m *misses) take(k []byte) (pre uint64, ok bool) {
	m.mu.Lock()
	pre, ok = m.m[string(k)]
	if ok {
		delete(m.m, string(k))
	}
	m.mu.Unlock()
	return pre, ok
}

// MarkSeen records that group handled id.
func (b *Backend) MarkSeen(ctx context.Context, group, id string) error {
	return b.write(func(r *round) error { return r.markSeen(group, id) })
}

// Forget removes an inbox mark; its expiry entry is left to the sweeper.
func (b *Backend) Forget(ctx context.Context, group, id string) error {
	return b.write(func(r *round) error { return r.deleteTracked(inboxKey(group, id)) })
}

// InboxRetention is how long marks are kept.
func (b *Backend) InboxRetention() time.Duration { return b.cfg.InboxRetention }

// ExpireInbox deletes the inbox marks that expired before now and returns
// how many. A background sweeper calls it every minute.
func (b *Backend) ExpireInbox(ctx context.Context, now time.Time) (int, error) {
	lo, hi := []byte{kindExpiry}, appendTime([]byte{kindExpiry}, now)
	total := 0
	for {
		iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return total, unavailable("expire inbox", err)
		}
		var keys [][]byte
		for iter.First(); iter.Valid() && len(keys) < 1000; iter.Next() {
			keys = append(keys, append([]byte(nil), iter.Key()...))
		}
		err = iter.Close()
		if err != nil || len(keys) == 0 {
			return total, err
		}
		err = b.write(func(r *round) error {
			for _, k := range keys {
				group, id, _ := cutNUL(k[9:])
				ik := inboxKey(group, id)
				// A newer mark of the same id has a later expiry: keep it.
				if v, ok, err := r.get(ik); err != nil {
					return err
				} else if ok && expired(v, now) {
					if err := r.deleteTracked(ik); err != nil {
						return err
					}
				}
				if err := r.delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += len(keys)
	}
}

func cutNUL(b []byte) (string, string, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), string(b[i+1:]), true
		}
	}
	return string(b), "", false
}

func (b *Backend) runSweeper() {
	defer b.bg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
			if _, err := b.ExpireInbox(context.Background(), b.now()); err != nil && !errors.Is(err, errClosed) {
				b.cfg.Logger.Error("embedded: inbox sweep failed", "err", err)
			}
		}
	}
}

// runRetries moves nacked messages whose delay has passed back into their
// group's queue.
func (b *Backend) runRetries() {
	defer b.bg.Done()
	for {
		next, err := b.moveDueRetries()
		if err != nil && !errors.Is(err, errClosed) {
			b.cfg.Logger.Error("embedded: redelivery failed", "err", err)
			next = time.Second
		}
		t := time.NewTimer(next)
		select {
		case <-b.closing:
			t.Stop()
			return
		case <-b.retryWake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (b *Backend) wakeRetries() {
	select {
	case b.retryWake <- struct{}{}:
	default:
	}
}

// moveDueRetries requeues the due retries and says how long to wait for the
// next one.
func (b *Backend) moveDueRetries() (time.Duration, error) {
	for {
		now := b.now()
		iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindRetry}, UpperBound: []byte{kindRetry + 1}})
		if err != nil {
			return 0, unavailable("retries", err)
		}
		type due struct {
			key   []byte
			group string
			rec   record
		}
		var batch []due
		wait := time.Second
		for iter.First(); iter.Valid() && len(batch) < 1000; iter.Next() {
			k := iter.Key()
			at := time.Unix(0, int64(uint64FromKey(k[:9])))
			if at.After(now) {
				wait = min(wait, at.Sub(now))
				break
			}
			group, err := parseRetryKey(k)
			if err != nil {
				continue
			}
			rec, err := decodeRecord(0, iter.Value())
			if err != nil {
				continue
			}
			batch = append(batch, due{append([]byte(nil), k...), group, rec})
		}
		if err := iter.Close(); err != nil {
			return 0, unavailable("retries", err)
		}
		if len(batch) == 0 {
			return wait, nil
		}
		err = b.write(func(r *round) error {
			for _, d := range batch {
				if err := r.consume(d.key); err != nil {
					return err
				}
				b.mu.RLock()
				g := b.groups[d.group]
				b.mu.RUnlock()
				if g == nil {
					continue // the key names a group this data directory declared
				}
				if err := r.enqueueTo(g, d.rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
}

// Append records journal entries, assigning their Seq.
func (b *Backend) Append(ctx context.Context, entries ...store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	vals := encodeEntries(entries)
	return b.write(func(r *round) error { return r.journal(entries, vals) })
}

// encodeEntries encodes entries without their Seq, which the writer assigns
// and the reader takes from the key, into one buffer.
func encodeEntries(entries []store.Entry) [][]byte {
	n := 0
	for i := range entries {
		n += store.EntrySize(&entries[i])
	}
	buf := make([]byte, 0, n)
	vals := make([][]byte, len(entries))
	for i := range entries {
		start := len(buf)
		buf = store.AppendEntry(buf, &entries[i])
		vals[i] = buf[start:len(buf):len(buf)]
	}
	return vals
}

// journal writes encoded entries, numbering them and the caller's entries.
func (r *round) journal(entries []store.Entry, vals [][]byte) error {
	for i := range entries {
		e := &entries[i]
		e.Seq = r.nextSeq()
		if err := r.set(seqKey(kindJournal, e.Seq), vals[i]); err != nil {
			return err
		}
		if e.CorrelationID != "" {
			if err := r.set(corrKey(e.CorrelationID, e.Seq), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// History returns one correlation id's entries in order.
func (b *Backend) History(ctx context.Context, correlationID string) ([]store.Entry, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	p := append(append([]byte{kindCorr}, correlationID...), 0)
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, unavailable("journal", err)
	}
	defer iter.Close()
	var out []store.Entry
	for iter.First(); iter.Valid(); iter.Next() {
		e, err := b.entry(uint64FromKey(iter.Key()))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, iter.Error()
}

func (b *Backend) entry(seq uint64) (store.Entry, error) {
	v, closer, err := b.db.Get(seqKey(kindJournal, seq))
	if err != nil {
		return store.Entry{}, unavailable("journal", err)
	}
	defer closer.Close()
	e, err := store.ParseEntry(seq, v)
	if err != nil {
		return e, unavailable("journal", fmt.Errorf("entry %d: %w", seq, err))
	}
	return e, nil
}

// Since returns up to limit entries after seq after, in order.
func (b *Backend) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	iter, err := b.db.NewIter(&pebble.IterOptions{
		LowerBound: seqKey(kindJournal, after+1),
		UpperBound: []byte{kindJournal + 1},
	})
	if err != nil {
		return nil, unavailable("journal", err)
	}
	defer iter.Close()
	var out []store.Entry
	for iter.First(); iter.Valid() && len(out) < limit; iter.Next() {
		seq := uint64FromKey(iter.Key())
		e, err := store.ParseEntry(seq, iter.Value())
		if err != nil {
			return nil, unavailable("journal", fmt.Errorf("entry %d: %w", seq, err))
		}
		out = append(out, e)
	}
	return out, iter.Error()
}

// AddDead stores a dead letter, assigning its ID.
func (b *Backend) AddDead(ctx context.Context, d store.DeadLetter) error {
	v, err := b.encodeDead(d)
	if err != nil {
		return err
	}
	return b.write(func(r *round) error { return r.set(seqKey(kindDead, r.nextSeq()), v) })
}

// encodeDead encodes d without its ID, which is its key's sequence number,
// and with its body bounded.
func (b *Backend) encodeDead(d store.DeadLetter) ([]byte, error) {
	d.ID = ""
	if d.Time.IsZero() {
		d.Time = b.now()
	}
	b.cfg.Retention.Bound(&d)
	v, err := json.Marshal(d)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "dead letter", "encode: %w", err)
	}
	return v, nil
}

func deadSeq(id string) (uint64, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, &baton.Error{Code: baton.NotFound, Op: "dead letter " + id, Err: errors.New("no such dead letter (ids are numbers; see baton dlq list)")}
	}
	return seq, nil
}

// Dead returns one dead letter.
func (b *Backend) Dead(ctx context.Context, id string) (store.DeadLetter, error) {
	done, err := b.reader()
	if err != nil {
		return store.DeadLetter{}, err
	}
	defer done()
	var d store.DeadLetter
	seq, err := deadSeq(id)
	if err != nil {
		return d, err
	}
	v, closer, err := b.db.Get(seqKey(kindDead, seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return d, &baton.Error{Code: baton.NotFound, Op: "dead letter " + id, Err: errors.New("no such dead letter")}
	}
	if err != nil {
		return d, unavailable("dead letters", err)
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &d); err != nil {
		return d, unavailable("dead letters", err)
	}
	d.ID = strconv.FormatUint(seq, 10)
	return d, nil
}

// ListDead returns up to limit dead letters after the id after, oldest first.
func (b *Backend) ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	lo := []byte{kindDead}
	if after != "" {
		seq, err := deadSeq(after)
		if err != nil {
			return nil, err
		}
		lo = seqKey(kindDead, seq+1)
	}
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: []byte{kindDead + 1}})
	if err != nil {
		return nil, unavailable("dead letters", err)
	}
	defer iter.Close()
	var out []store.DeadLetter
	for iter.First(); iter.Valid() && len(out) < limit; iter.Next() {
		var d store.DeadLetter
		if err := json.Unmarshal(iter.Value(), &d); err != nil {
			return nil, unavailable("dead letters", err)
		}
		d.ID = strconv.FormatUint(uint64FromKey(iter.Key()), 10)
		out = append(out, d)
	}
	return out, iter.Error()
}

// DropDead deletes one dead letter.
func (b *Backend) DropDead(ctx context.Context, id string) error {
	seq, err := deadSeq(id)
	if err != nil {
		return err
	}
	return b.write(func(r *round) error {
		k := seqKey(kindDead, seq)
		_, ok, err := r.get(k)
		if err != nil {
			return err
		}
		if !ok {
			return &baton.Error{Code: baton.NotFound, Op: "dead letter " + id, Err: errors.New("no such dead letter")}
		}
		return r.deleteTracked(k)
	})
}
