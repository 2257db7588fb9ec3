package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/internal/jsonx"
	"github.com/batonhq/baton/store"
	"github.com/cockroachdb/pebble/v2"
)

// The outbound messages of a run transition are written into the queues in
// the same batch as the run: the store is the transport, so the outbox is
// delivered as it is written.

func runKey(id string) []byte { return prefixKey(kindRun, id) }

// runRevKey held a run's revision and wake time beside its document, until
// the document became the only record of them; what older versions wrote is
// deleted with its run.
func runRevKey(id string) []byte { return prefixKey(kindRunRev, id) }

func runBizKey(flow, key string) []byte { return prefixKey(kindRunKey, flow, key) }

func wakeKey(at time.Time, id string) []byte {
	return append(appendTime([]byte{kindWake}, at), id...)
}

func createdKey(at time.Time, id string) []byte {
	return append(appendTime([]byte{kindCreated}, at), id...)
}

func flowKey(flow string, at time.Time, id string) []byte {
	b := append(prefixKey(kindFlow, flow), 0)
	return append(appendTime(b, at), id...)
}

// CreateRun stores r unless its flow has a run with r.Key.
func (b *Backend) CreateRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, bool, error) {
	if r.ID == "" || r.Flow == "" || r.Key == "" {
		return r, false, baton.Errorf(baton.Invalid, "create run", "a run needs an id, a flow and a key")
	}
	r.Rev = 1
	if r.Created.IsZero() {
		r.Created = b.now()
	}
	if r.Updated.IsZero() {
		r.Updated = r.Created
	}
	if err := validJSON(r); err != nil {
		return r, false, err
	}
	doc := store.AppendRun(nil, &r)
	bk := runBizKey(r.Flow, r.Key)
	id, ok, pre, err := b.read(bk)
	if err != nil {
		return r, false, err
	}
	if ok {
		got, err := b.Run(ctx, string(id))
		return got, false, err
	}
	msgs, err := encodeOutbound(out)
	if err != nil {
		return r, false, err
	}
	var existing []byte
	err = b.write(func(w *round) error {
		id, ok, err := w.readAfter(bk, pre, nil, false)
		if err != nil {
			return err
		}
		if ok {
			existing, _, err = w.readAfter(runKey(string(id)), pre, nil, false)
			return err
		}
		if err := w.setTracked(runBizKey(r.Flow, r.Key), []byte(r.ID)); err != nil {
			return err
		}
		if err := w.setTracked(runKey(r.ID), doc); err != nil {
			return err
		}
		w.setRevision(r, r.Wake)
		if !r.Wake.IsZero() {
			if err := w.set(wakeKey(r.Wake, r.ID), nil); err != nil {
				return err
			}
		}
		if err := w.set(createdKey(r.Created, r.ID), nil); err != nil {
			return err
		}
		if err := w.set(flowKey(r.Flow, r.Created, r.ID), nil); err != nil {
			return err
		}
		return w.send(msgs)
	})
	if err != nil {
		return r, false, err
	}
	if existing != nil {
		var got store.Run
		if err := json.Unmarshal(existing, &got); err != nil {
			return r, false, unavailable("runs", err)
		}
		return got, false, nil
	}
	return r, true, nil
}

// SaveRun stores r if the stored revision is r.Rev.
func (b *Backend) SaveRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, error) {
	return b.saveRun(ctx, r, out, nil, nil)
}

// SaveRunAcking is SaveRun that also acknowledges, in the same write, the
// delivery that caused the transition (a coordinator's reply), and appends
// the journal entries given (the end of the run, when the reply ends it).
func (b *Backend) SaveRunAcking(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, error) {
	return b.saveRun(ctx, r, out, &d, journal)
}

// SaveRunAckingAsync is SaveRunAcking that returns once the writer has
// taken the save, before it is durable: err is a save refused before
// anything was written (a conflict, an unknown run, bad input), and
// otherwise the saves that follow, which the writer applies in the order
// they are taken, already see this one. durable waits until the save is
// on disk and returns what SaveRunAcking would have (an error then is the
// round's or the disk's, and the delivery is not acknowledged); it must be
// called, once. A coordinator handles its next reply meanwhile, as a
// service's consumer does with CommitAsync.
func (b *Backend) SaveRunAckingAsync(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (_ store.Run, durable func(context.Context) error, _ error) {
	sub, rec, err := claimDelivery(&d)
	if err != nil {
		return r, nil, err
	}
	saved, done, err := b.saveRunSettling(ctx, r, out, sub, rec, journal)
	if err != nil {
		sub.release(rec.seq, err)
		return r, nil, err
	}
	return saved, func(context.Context) error {
		err := <-done
		sub.release(rec.seq, err)
		return err
	}, nil
}

func (b *Backend) saveRun(ctx context.Context, r store.Run, out []store.Outbound, d *bus.Delivery, journal []store.Entry) (store.Run, error) {
	var sub *subscription
	var rec record
	if d != nil {
		var err error
		if sub, rec, err = claimDelivery(d); err != nil {
			return r, err
		}
	}
	saved, done, err := b.saveRunSettling(ctx, r, out, sub, rec, journal)
	if err == nil {
		err = <-done
	}
	if err != nil {
		saved = r
	}
	if sub != nil {
		sub.release(rec.seq, err)
	}
	return saved, err
}

// claimDelivery claims d, a delivery of this backend, for the write that
// settles it.
func claimDelivery(d *bus.Delivery) (*subscription, record, error) {
	ref, ok := d.Ref.(*inflight)
	if !ok {
		return nil, record{}, baton.Errorf(baton.Invalid, "save run", "delivery is not from this backend")
	}
	if err := ref.sub.claim(ref); err != nil {
		return nil, record{}, err
	}
	return ref.sub, ref.rec, nil
}

// saveRunSettling hands the save to the writer and returns once the writer
// has taken it (err: refused, nothing written); done then receives nil once
// it is durable, or the error that kept it from being written.
func (b *Backend) saveRunSettling(ctx context.Context, r store.Run, out []store.Outbound, sub *subscription, rec record, journal []store.Entry) (_ store.Run, done <-chan error, _ error) {
	if err := validJSON(r); err != nil {
		return r, nil, err
	}
	expect := r.Rev
	r.Rev++
	if r.Updated.IsZero() {
		r.Updated = b.now()
	}
	doc := store.AppendRun(nil, &r)
	msgs, err := encodeOutbound(out)
	if err != nil {
		r.Rev = expect
		return r, nil, err
	}
	entries := encodeEntries(journal)
	taken := make(chan error, 1) // fn's verdict, before the round is applied
	done = b.submit(func(w *round) (err error) {
		defer func() { taken <- err }()
		got, indexed, ok, err := w.revision(r.ID)
		if err != nil {
			return err
		}
		if !ok {
			return &baton.Error{Code: baton.NotFound, Op: "save run " + r.ID, Err: errors.New("no such run")}
		}
		if got != expect {
			return baton.Errorf(baton.Conflict, "save run "+r.ID, "revision %d was saved meanwhile (this save started from %d)", got, expect)
		}
		at := indexAt(r, indexed)
		if err := w.setTracked(runKey(r.ID), withWakeIndex(doc, r.Wake, at)); err != nil {
			return err
		}
		w.setRevision(r, at)
		if err := w.moveWake(r.ID, indexed, at); err != nil {
			return err
		}
		if sub != nil {
			if err := w.settle(sub, rec, false, 0); err != nil {
				return err
			}
		}
		if err := w.journal(journal, entries); err != nil {
			return err
		}
		return w.send(msgs)
	})
	select {
	case err = <-taken:
		if err != nil {
			err = <-done // the same error, or the round's when fn failed half-way
		}
	case err = <-done:
		// Refused before fn ran (the backend is closed or failed), or
		// already durable: done was read, so it is given again.
		again := make(chan error, 1)
		again <- err
		done = again
	}
	if err != nil {
		r.Rev = expect
		return r, nil, err
	}
	return r, done, nil
}

// validJSON checks the raw members of a run, which AppendRun writes as
// they are. They are checked whole at every save, with jsonx.Valid (what
// json.Valid accepts, faster): a run's data grows with its steps and is
// rewritten at each of them.
func validJSON(r store.Run) error {
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"input", r.Input}, {"result", r.Result}, {"data", r.Data}} {
		if len(f.v) > 0 && !jsonx.Valid(f.v) {
			return baton.Errorf(baton.Invalid, "run "+r.ID, "its %s is not valid JSON", f.name)
		}
	}
	return nil
}

// revision is a run's stored revision and the time it is indexed under in
// the wake index. The writer remembers those of the runs under way, which
// it wrote itself (one process holds the data directory), and reads the
// others from their documents: a save writes the document alone, not a key
// of its own for them beside it (one write fewer per transition).
type revision struct {
	rev     int64
	indexed time.Time
}

func (w *round) revision(id string) (int64, time.Time, bool, error) {
	if r, ok := w.b.revs[id]; ok {
		return r.rev, r.indexed, true, nil
	}
	v, ok, err := w.get(runKey(id))
	if err != nil || !ok {
		return 0, time.Time{}, false, err
	}
	var r struct {
		Rev       int64     `json:"rev"`
		Wake      time.Time `json:"wake"`
		WakeIndex *int64    `json:"wake_index"`
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return 0, time.Time{}, false, unavailable("runs", fmt.Errorf("run %s: %w", id, err))
	}
	if r.WakeIndex != nil {
		return r.Rev, time.Unix(0, *r.WakeIndex).UTC(), true, nil
	}
	return r.Rev, r.Wake, true, nil
}

// setRevision remembers r's revision and wake index time while r is under
// way.
func (w *round) setRevision(r store.Run, indexed time.Time) {
	if r.Status.Terminal() {
		delete(w.b.revs, r.ID)
	} else {
		w.b.revs[r.ID] = revision{r.Rev, indexed}
	}
}

// The wake index (W<time><id>) holds a run under a time at or before its
// Wake, not under its Wake: every step of a flow with timeouts pushes its
// run's Wake out, and moving the key each time cost two writes per
// transition. A save moves the key only when the Wake comes earlier than
// the time indexed, or the run ends without one; DueRuns reads the runs
// whose indexed time has come, returns those whose Wake has, and moves
// the others' keys to their Wake. A run's document records the time it is
// indexed under when that is not its Wake, as its last member
// "wake_index" (nanoseconds since 1970); documents written before have
// none, and were indexed under their Wake.

// indexAt is where a save of r moves its run's key in the wake index from
// indexed, the time it is under now (zero: none).
func indexAt(r store.Run, indexed time.Time) time.Time {
	switch {
	case r.Wake.IsZero() && r.Status.Terminal():
		return time.Time{}
	case !r.Wake.IsZero() && (indexed.IsZero() || r.Wake.Before(indexed)):
		return r.Wake
	}
	return indexed
}

const wakeIndexMember = `,"wake_index":`

// withWakeIndex returns doc, a run's document whose Wake is wake, recording
// indexed, the time the run is indexed under, when that is not wake.
func withWakeIndex(doc []byte, wake, indexed time.Time) []byte {
	if indexed.Equal(wake) {
		return doc
	}
	out := make([]byte, 0, len(doc)+len(wakeIndexMember)+20)
	out = append(out, doc[:len(doc)-1]...)
	out = append(out, wakeIndexMember...)
	out = strconv.AppendInt(out, indexed.UnixNano(), 10)
	return append(out, '}')
}

// moveWake moves run id's key in the wake index from the time it is under,
// from, to to (zero: none).
func (w *round) moveWake(id string, from, to time.Time) error {
	if from.Equal(to) {
		return nil
	}
	if !from.IsZero() {
		if err := w.delete(wakeKey(from, id)); err != nil {
			return err
		}
	}
	if !to.IsZero() {
		return w.set(wakeKey(to, id), nil)
	}
	return nil
}

type outbound struct {
	group string
	rec   record
	val   []byte
}

// encodeOutbound makes queue records of what a run transition sends. A
// body is a bus record already (flow writes them so), which the queue
// record holds as it is; it is read once, for the group that takes it from
// memory.
func encodeOutbound(out []store.Outbound) ([]outbound, error) {
	msgs := make([]outbound, len(out))
	for i, o := range out {
		m, err := bus.ParseRecord(o.Body)
		if err != nil {
			return nil, baton.Errorf(baton.Invalid, "send "+o.ID, "the body is not a bus record: %w", err)
		}
		rec := record{attempt: 1, msg: m}
		msgs[i] = outbound{group: o.Group, rec: rec, val: append(appendRecordHead(make([]byte, 0, len(o.Body)+binary.MaxVarintLen32+1), rec), o.Body...)}
	}
	return msgs, nil
}

// send enqueues outbound messages: to their group, declared if need be, or
// to every group their type routes to.
func (w *round) send(msgs []outbound) error {
	for _, m := range msgs {
		if m.group != "" {
			g, err := w.group(m.group)
			if err != nil {
				return err
			}
			if err := w.enqueueEncoded(g, m.rec, m.val); err != nil {
				return err
			}
			continue
		}
		for _, g := range w.b.route(m.rec.msg.Type) {
			if err := w.enqueueEncoded(g, m.rec, m.val); err != nil {
				return err
			}
		}
	}
	return nil
}

// group returns the named group, declaring it, bound to no pattern, if it
// does not exist: a group that only receives messages sent to it by name.
func (w *round) group(name string) (*group, error) {
	b := w.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if g, ok := b.groups[name]; ok {
		return g, nil
	}
	if err := w.set(append([]byte{kindGroup}, name...), nil); err != nil {
		return nil, err
	}
	g := newGroup(b, name, nil, false)
	b.groups[name] = g
	return g, nil
}

// Run returns one run.
func (b *Backend) Run(ctx context.Context, id string) (store.Run, error) {
	done, err := b.reader()
	if err != nil {
		return store.Run{}, err
	}
	defer done()
	return b.run(id)
}

// run reads a run; the caller guards it with reader.
func (b *Backend) run(id string) (store.Run, error) {
	var r store.Run
	v, closer, err := b.db.Get(runKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return r, &baton.Error{Code: baton.NotFound, Op: "run " + id, Err: errors.New("no such run")}
	}
	if err != nil {
		return r, unavailable("runs", err)
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &r); err != nil {
		return r, unavailable("runs", err)
	}
	return r, nil
}

const maxRunPage = 1000

// ListRuns returns the runs q selects, newest first.
func (b *Backend) ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	limit := q.Limit
	if limit <= 0 || limit > maxRunPage {
		limit = maxRunPage
	}
	if q.Key != "" && q.Flow != "" {
		v, closer, err := b.db.Get(runBizKey(q.Flow, q.Key))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, unavailable("runs", err)
		}
		id := string(v)
		closer.Close()
		r, err := b.run(id)
		if err != nil || !matches(r, q) {
			return nil, err
		}
		if q.After != "" {
			// The one run was on the previous page unless it is older
			// than the run the page ended with.
			after, err := b.run(q.After)
			if err != nil {
				return nil, err
			}
			older := r.Created.UnixNano() < after.Created.UnixNano() ||
				r.Created.UnixNano() == after.Created.UnixNano() && r.ID < after.ID
			if !older {
				return nil, nil
			}
		}
		return []store.Run{r}, nil
	}
	if q.Key != "" {
		return b.runsOfKey(q, limit)
	}
	var prefix []byte
	if q.Flow != "" {
		prefix = append(prefixKey(kindFlow, q.Flow), 0)
	} else {
		prefix = []byte{kindCreated}
	}
	lo, hi := prefix, upperBound(prefix)
	if !q.Since.IsZero() {
		lo = appendTime(append([]byte(nil), prefix...), q.Since)
	}
	if !q.Until.IsZero() {
		hi = appendTime(append([]byte(nil), prefix...), q.Until)
	}
	if q.After != "" {
		after, err := b.run(q.After)
		if err != nil {
			return nil, err
		}
		// Strictly older than the last run of the previous page.
		hi = append(appendTime(append([]byte(nil), prefix...), after.Created), after.ID...)
	}
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, unavailable("runs", err)
	}
	defer iter.Close()
	var out []store.Run
	for iter.Last(); iter.Valid() && len(out) < limit; iter.Prev() {
		id := string(bytes.Clone(iter.Key()[len(prefix)+8:]))
		r, err := b.run(id)
		if err != nil {
			return nil, err
		}
		if matches(r, q) {
			out = append(out, r)
		}
	}
	return out, iter.Error()
}

// DueRuns returns the runs whose wake time has come, earliest first.
func (b *Backend) DueRuns(ctx context.Context, now time.Time, limit int) ([]store.Run, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	iter, err := b.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{kindWake},
		UpperBound: appendTime([]byte{kindWake}, now.Add(time.Nanosecond)),
	})
	if err != nil {
		return nil, unavailable("runs", err)
	}
	defer iter.Close()
	if limit <= 0 {
		return nil, nil
	}
	// The runs are indexed under times at or before their Wake: the
	// earliest limit Wakes are known once the index reaches past the
	// latest of them.
	var out []store.Run
	var early []store.Run // indexed as due, but their Wake is later (or none)
	var earlyAt []time.Time
	for iter.First(); iter.Valid(); iter.Next() {
		at := time.Unix(0, int64(binary.BigEndian.Uint64(iter.Key()[1:9]))).UTC()
		if len(out) == limit && at.After(out[limit-1].Wake) {
			break
		}
		r, err := b.run(string(iter.Key()[9:]))
		if errors.Is(err, baton.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.Wake.IsZero() || r.Wake.After(now) {
			early, earlyAt = append(early, r), append(earlyAt, at)
			continue
		}
		i, _ := slices.BinarySearchFunc(out, r, func(a, b store.Run) int {
			if c := a.Wake.Compare(b.Wake); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		if i < limit {
			out = slices.Insert(out, i, r)
			if len(out) > limit {
				out = out[:limit]
			}
		}
	}
	if err := iter.Error(); err != nil {
		return nil, err
	}
	if len(early) > 0 {
		if err := b.reindex(early, earlyAt); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reindex moves the wake index keys of runs, found indexed under the times
// at though their Wake is later, to their Wake, each unless it was saved
// since it was read.
func (b *Backend) reindex(runs []store.Run, at []time.Time) error {
	return b.write(func(w *round) error {
		for i, r := range runs {
			rev, indexed, ok, err := w.revision(r.ID)
			if err != nil {
				return err
			}
			if !ok || rev != r.Rev || !indexed.Equal(at[i]) {
				continue
			}
			doc, ok, err := w.get(runKey(r.ID))
			if err != nil || !ok {
				return err
			}
			// Indexed under a time that is not its Wake, the document ends
			// with the member that says so.
			if j := bytes.LastIndex(doc, []byte(wakeIndexMember)); j >= 0 {
				doc = append(doc[:j:j], '}')
			}
			if err := w.setTracked(runKey(r.ID), doc); err != nil {
				return err
			}
			w.setRevision(r, r.Wake)
			if err := w.moveWake(r.ID, indexed, r.Wake); err != nil {
				return err
			}
		}
		return nil
	})
}

// runsOfKey lists the runs of every flow with q.Key, newest first: it
// walks the business-key index, whose keys end with the key, and reads only
// the runs whose index key ends with q.Key (baton status asks for runs by
// key alone).
func (b *Backend) runsOfKey(q store.RunQuery, limit int) ([]store.Run, error) {
	prefix := []byte{kindRunKey}
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upperBound(prefix)})
	if err != nil {
		return nil, unavailable("runs", err)
	}
	defer iter.Close()
	suffix := append([]byte{0}, q.Key...)
	var out []store.Run
	for iter.First(); iter.Valid(); iter.Next() {
		// The flow's name may hold the separator too: the suffix picks
		// the candidates, and matches the runs of q.Key among them.
		if !bytes.HasSuffix(iter.Key(), suffix) {
			continue
		}
		r, err := b.run(string(iter.Value()))
		if err != nil {
			return nil, err
		}
		if matches(r, q) {
			out = append(out, r)
		}
	}
	if err := iter.Error(); err != nil {
		return nil, unavailable("runs", err)
	}
	newer := func(a, b store.Run) bool {
		return a.Created.UnixNano() > b.Created.UnixNano() || a.Created.UnixNano() == b.Created.UnixNano() && a.ID > b.ID
	}
	slices.SortFunc(out, func(a, b store.Run) int {
		if newer(a, b) {
			return -1
		}
		return 1
	})
	if q.After != "" {
		after, err := b.run(q.After)
		if err != nil {
			return nil, err
		}
		i := 0
		for i < len(out) && !newer(after, out[i]) {
			i++
		}
		out = out[i:]
	}
	return out[:min(limit, len(out))], nil
}

func matches(r store.Run, q store.RunQuery) bool {
	return (q.Status == "" || r.Status == q.Status) && (q.Key == "" || r.Key == q.Key) &&
		(q.Flow == "" || r.Flow == q.Flow) &&
		(q.Since.IsZero() || r.Created.UnixNano() >= q.Since.UnixNano()) &&
		(q.Until.IsZero() || r.Created.UnixNano() < q.Until.UnixNano())
}

// SaveSchedule stores s if the stored revision is s.Rev (0: new).
func (b *Backend) SaveSchedule(ctx context.Context, s store.Schedule) (store.Schedule, error) {
	if s.Name == "" {
		return s, baton.Errorf(baton.Invalid, "save schedule", "a schedule needs a name")
	}
	expect := s.Rev
	s.Rev++
	doc, err := json.Marshal(s)
	if err != nil {
		return s, baton.Errorf(baton.Invalid, "save schedule", "encode: %w", err)
	}
	k := prefixKey(kindSched, s.Name)
	err = b.write(func(w *round) error {
		v, ok, err := w.get(k)
		if err != nil {
			return err
		}
		var got int64
		if ok {
			var old store.Schedule
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			got = old.Rev
		}
		if got != expect {
			return baton.Errorf(baton.Conflict, "save schedule "+s.Name, "revision %d was saved meanwhile (this save started from %d)", got, expect)
		}
		return w.setTracked(k, doc)
	})
	if err != nil {
		s.Rev = expect
		return s, err
	}
	return s, nil
}

// Schedule returns one schedule.
func (b *Backend) Schedule(ctx context.Context, name string) (store.Schedule, error) {
	done, err := b.reader()
	if err != nil {
		return store.Schedule{}, err
	}
	defer done()
	var s store.Schedule
	v, closer, err := b.db.Get(prefixKey(kindSched, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return s, &baton.Error{Code: baton.NotFound, Op: "schedule " + name, Err: errors.New("no such schedule")}
	}
	if err != nil {
		return s, unavailable("schedules", err)
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &s); err != nil {
		return s, unavailable("schedules", err)
	}
	return s, nil
}

// ListSchedules returns every schedule, by name.
func (b *Backend) ListSchedules(ctx context.Context) ([]store.Schedule, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindSched}, UpperBound: []byte{kindSched + 1}})
	if err != nil {
		return nil, unavailable("schedules", err)
	}
	defer iter.Close()
	var out []store.Schedule
	for iter.First(); iter.Valid(); iter.Next() {
		var s store.Schedule
		if err := json.Unmarshal(iter.Value(), &s); err != nil {
			return nil, unavailable("schedules", err)
		}
		out = append(out, s)
	}
	return out, iter.Error()
}

// DeleteSchedule removes a schedule.
func (b *Backend) DeleteSchedule(ctx context.Context, name string) error {
	k := prefixKey(kindSched, name)
	return b.write(func(w *round) error {
		_, ok, err := w.get(k)
		if err != nil {
			return err
		}
		if !ok {
			return &baton.Error{Code: baton.NotFound, Op: "schedule " + name, Err: errors.New("no such schedule")}
		}
		return w.deleteTracked(k)
	})
}
