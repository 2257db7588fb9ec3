package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/batch"
	"github.com/batonhq/baton/store"
	"github.com/jackc/pgx/v5"
)

// seenReq is one Seen waiting for the inbox reader.
type seenReq struct {
	inboxMark
	seen bool // set by the lookup before done
	done chan error
}

// maxSeenBatch bounds the marks one lookup of the inbox reader asks for.
const maxSeenBatch = 256

// Seen reports whether group handled id within the retention window.
// Concurrent Seens of one process are answered together by one reader: a
// Seen that finds it idle is sent at once, and those that arrive while a
// lookup is in flight are gathered into the next, one statement for all.
func (s *Store) Seen(ctx context.Context, group, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, s.fail("inbox", err)
	}
	req := &seenReq{inboxMark: inboxMark{clean(group), clean(id)}, done: make(chan error, 1)}
	select {
	case s.seens <- req:
	case <-s.done:
		return false, errorf(baton.Unavailable, "inbox", "store closed")
	case <-ctx.Done():
		return false, s.fail("inbox", ctx.Err())
	}
	select {
	case err := <-req.done:
		return req.seen, err
	case <-s.done:
		return false, errorf(baton.Unavailable, "inbox", "store closed")
	case <-ctx.Done():
		return false, s.fail("inbox", ctx.Err())
	}
}

// readInbox is the inbox reader: it answers the Seens waiting, several at
// a time, until Close, which cancels ctx.
func (s *Store) readInbox(ctx context.Context) {
	defer s.bg.Done()
	batch.Serve(s.done, s.seens, maxSeenBatch, nil, func(b []*seenReq) {
		err := s.seenBatch(ctx, b)
		for _, req := range b {
			req.done <- err
		}
	})
}

// seenBatch sets seen on each request of batch whose mark is live.
func (s *Store) seenBatch(ctx context.Context, batch []*seenReq) error {
	groups, ids := make([]string, len(batch)), make([]string, len(batch))
	for i, req := range batch {
		groups[i], ids[i] = req.group, req.id
	}
	// Not the context of one caller: the statement answers all of them.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.seenMany, groups, ids, time.Now())
	if err != nil {
		return s.fail("inbox", err)
	}
	live := map[inboxMark]bool{}
	var m inboxMark
	if _, err := pgx.ForEachRow(rows, []any{&m.group, &m.id}, func() error {
		live[m] = true
		return nil
	}); err != nil {
		return s.fail("inbox", err)
	}
	for _, req := range batch {
		req.seen = live[req.inboxMark]
	}
	return nil
}

// MarkSeen records that group handled id, until the retention window ends.
func (s *Store) MarkSeen(ctx context.Context, group, id string) error {
	_, err := s.pool.Exec(ctx, s.q.markSeen, clean(group), clean(id), time.Now().Add(s.cfg.InboxRetention))
	if err != nil {
		return s.fail("inbox", err)
	}
	return nil
}

// Forget removes an inbox mark.
func (s *Store) Forget(ctx context.Context, group, id string) error {
	if _, err := s.pool.Exec(ctx, s.q.forget, clean(group), clean(id)); err != nil {
		return s.fail("inbox", err)
	}
	return nil
}

// InboxRetention is how long marks are kept.
func (s *Store) InboxRetention() time.Duration { return s.cfg.InboxRetention }

// expireBatch bounds the rows one statement of ExpireInbox deletes.
const expireBatch = 10000

// ExpireInbox deletes the marks whose window ended at now and returns how
// many, in batches so that no transaction grows large. A sweeper calls it
// every minute.
func (s *Store) ExpireInbox(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, s.q.expire, now, expireBatch)
		if err != nil {
			return total, s.fail("expire inbox", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < expireBatch {
			return total, nil
		}
	}
}

// appendReq is one Append (or Settle) waiting for the journal writer.
type appendReq struct {
	corr    []string
	at      []time.Time
	outcome []string
	docs    []string
	mark    *inboxMark // Settle's: written in the entries' transaction
	seqs    []uint64   // set by the writer before done
	done    chan error
}

type inboxMark struct{ group, id string }

// maxAppendBatch bounds the entries one statement of the journal writer
// inserts.
const maxAppendBatch = 1000

// Append records journal entries, assigning their Seq. Concurrent Appends
// of one process are gathered by one writer into one statement, so that
// they share the journal lock and one commit.
func (s *Store) Append(ctx context.Context, entries ...store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.journal(ctx, nil, entries)
}

// Settle marks id handled by group and appends entries in one transaction,
// which the journal writer shares with the other Appends and Settles
// waiting: one commit for all of them.
func (s *Store) Settle(ctx context.Context, group, id string, entries ...store.Entry) error {
	return s.journal(ctx, &inboxMark{clean(group), clean(id)}, entries)
}

// journal hands entries, and an inbox mark if any, to the journal writer
// and waits for their commit.
func (s *Store) journal(ctx context.Context, mark *inboxMark, entries []store.Entry) error {
	n := len(entries)
	req := &appendReq{corr: make([]string, n), at: make([]time.Time, n), outcome: make([]string, n), docs: make([]string, n),
		mark: mark, done: make(chan error, 1)}
	for i, e := range entries {
		req.corr[i], req.at[i], req.outcome[i] = clean(e.CorrelationID), e.Time, clean(string(e.Outcome))
		e.Seq = 0
		v, err := json.Marshal(e)
		if err != nil {
			return baton.Errorf(baton.Invalid, "journal", "encode entry: %w", err)
		}
		req.docs[i] = string(v)
	}
	select {
	case s.appends <- req:
	case <-s.done:
		return errorf(baton.Unavailable, "journal", "store closed")
	case <-ctx.Done():
		return s.fail("journal", ctx.Err())
	}
	select {
	case err := <-req.done:
		if err == nil {
			for i, seq := range req.seqs {
				entries[i].Seq = seq
			}
		}
		return err
	case <-s.done:
		return errorf(baton.Unavailable, "journal", "store closed")
	case <-ctx.Done():
		// The entries may still be written.
		return s.fail("journal", ctx.Err())
	}
}

// writeJournal is the journal writer: it inserts what the Appends waiting
// hand it, several at a time.
func (s *Store) writeJournal() {
	defer s.bg.Done()
	entries := func(req *appendReq) int { return len(req.docs) }
	batch.Serve(s.done, s.appends, maxAppendBatch, entries, func(b []*appendReq) {
		n := 0
		for _, req := range b {
			n += entries(req)
		}
		err := s.appendBatch(b, n)
		for _, req := range b {
			req.done <- err
		}
	})
}

func (s *Store) appendBatch(batch []*appendReq, n int) error {
	corr := make([]string, 0, n)
	at := make([]time.Time, 0, n)
	outcome := make([]string, 0, n)
	docs := make([]string, 0, n)
	var groups, ids []string
	marked := map[inboxMark]bool{}
	for _, req := range batch {
		corr, at = append(corr, req.corr...), append(at, req.at...)
		outcome, docs = append(outcome, req.outcome...), append(docs, req.docs...)
		// One row per mark: two copies of an event settled in one batch
		// would make the upsert touch a row twice, which it refuses.
		if m := req.mark; m != nil && !marked[*m] {
			marked[*m] = true
			groups, ids = append(groups, m.group), append(ids, m.id)
		}
	}
	// Not the context of one caller: the statement writes for all of them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seqs []int64
	insert := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) error {
		rows, err := q.Query(ctx, s.q.appendJournal, s.lockJ, corr, at, outcome, docs)
		if err != nil {
			return err
		}
		seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	}
	var err error
	if len(groups) == 0 {
		err = insert(s.pool)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, s.q.markSeenMany, groups, ids, time.Now().Add(s.cfg.InboxRetention)); err != nil {
				return err
			}
			return insert(tx)
		})
	}
	if err != nil {
		return s.fail("journal", err)
	}
	if len(seqs) != n {
		return baton.Errorf(baton.Internal, "journal", "%d entries appended, %d seqs returned", n, len(seqs))
	}
	// The rows were inserted, and drew their seq, in the entries' order.
	slices.Sort(seqs)
	for _, req := range batch {
		req.seqs = make([]uint64, len(req.docs))
		for i := range req.seqs {
			req.seqs[i] = uint64(seqs[0])
			seqs = seqs[1:]
		}
	}
	return nil
}

func (s *Store) entries(rows pgx.Rows) ([]store.Entry, error) {
	var out []store.Entry
	var seq int64
	var doc []byte
	_, err := pgx.ForEachRow(rows, []any{&seq, &doc}, func() error {
		var e store.Entry
		if err := json.Unmarshal(doc, &e); err != nil {
			return baton.Errorf(baton.Internal, "journal", "entry %d: %w", seq, err)
		}
		e.Seq = uint64(seq)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, s.fail("journal", err)
	}
	return out, nil
}

// History returns one correlation id's entries in order.
func (s *Store) History(ctx context.Context, correlationID string) ([]store.Entry, error) {
	rows, err := s.pool.Query(ctx, s.q.history, clean(correlationID))
	if err != nil {
		return nil, s.fail("journal", err)
	}
	return s.entries(rows)
}

// Since returns up to limit entries with Seq > after, in order.
func (s *Store) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	rows, err := s.pool.Query(ctx, s.q.since, int64(min(after, 1<<63-1)), max(limit, 0))
	if err != nil {
		return nil, s.fail("journal", err)
	}
	return s.entries(rows)
}

// AddDead stores a dead letter under a new id.
func (s *Store) AddDead(ctx context.Context, d store.DeadLetter) error {
	if d.Time.IsZero() {
		d.Time = time.Now()
	}
	s.cfg.Retention.Bound(&d)
	body := d.Body
	if body == nil {
		body = []byte{}
	}
	var meta []byte // SQL NULL when there is none
	if len(d.Meta) > 0 {
		meta, _ = json.Marshal(d.Meta)
	}
	_, err := s.pool.Exec(ctx, s.q.addDead, clean(d.Group), clean(d.Type), clean(d.EventID), clean(d.CorrelationID),
		d.Attempts, clean(d.Reason), d.Time, body, meta, d.Truncated, d.Size)
	if err != nil {
		return s.fail("dead letter", err)
	}
	return nil
}

func scanDead(row pgx.CollectableRow) (store.DeadLetter, error) {
	var d store.DeadLetter
	var id int64
	var meta []byte
	err := row.Scan(&id, &d.Group, &d.Type, &d.EventID, &d.CorrelationID, &d.Attempts, &d.Reason, &d.Time, &d.Body, &meta, &d.Truncated, &d.Size)
	d.ID = formatID(id)
	if err == nil && meta != nil {
		err = json.Unmarshal(meta, &d.Meta)
	}
	return d, err
}

func noDead(id string) error {
	return errorf(baton.NotFound, "dead letter "+id, "no such dead letter")
}

// Dead returns one dead letter.
func (s *Store) Dead(ctx context.Context, id string) (store.DeadLetter, error) {
	n, ok := parseID(id)
	if !ok {
		return store.DeadLetter{}, noDead(id)
	}
	rows, err := s.pool.Query(ctx, s.q.dead, n)
	if err != nil {
		return store.DeadLetter{}, s.fail("dead letter "+id, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDead)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, noDead(id)
	}
	if err != nil {
		return d, s.fail("dead letter "+id, err)
	}
	return d, nil
}

// ListDead returns up to limit dead letters after the id after, oldest first.
func (s *Store) ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error) {
	var from int64
	if after != "" {
		n, ok := parseID(after)
		if !ok {
			return nil, noDead(after)
		}
		from = n
	}
	rows, err := s.pool.Query(ctx, s.q.listDead, from, max(limit, 0))
	if err != nil {
		return nil, s.fail("dead letters", err)
	}
	l, err := pgx.CollectRows(rows, scanDead)
	if err != nil {
		return nil, s.fail("dead letters", err)
	}
	return l, nil
}

// DropDead deletes one dead letter.
func (s *Store) DropDead(ctx context.Context, id string) error {
	n, ok := parseID(id)
	if !ok {
		return noDead(id)
	}
	tag, err := s.pool.Exec(ctx, s.q.dropDead, n)
	if err != nil {
		return s.fail("dead letter "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return noDead(id)
	}
	return nil
}
