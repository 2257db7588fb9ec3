package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/jackc/pgx/v5"
)

// outboxArgs are the outbound messages as the four arrays a statement
// unnests into outbox rows.
func outboxArgs(out []store.Outbound) (groups, types, ids []string, bodies [][]byte) {
	groups, types, ids = make([]string, len(out)), make([]string, len(out)), make([]string, len(out))
	bodies = make([][]byte, len(out))
	for i, o := range out {
		groups[i], types[i], ids[i] = clean(o.Group), clean(o.Type), clean(o.ID)
		bodies[i] = o.Body
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
	}
	return groups, types, ids, bodies
}

// validJSON checks the raw members of a run, which AppendRun writes as
// they are.
func validJSON(r store.Run) error {
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"input", r.Input}, {"result", r.Result}, {"data", r.Data}} {
		if len(f.v) > 0 && !json.Valid(f.v) {
			return baton.Errorf(baton.Invalid, "run "+r.ID, "its %s is not valid JSON", f.name)
		}
	}
	return nil
}

func decodeRun(doc []byte) (store.Run, error) {
	var r store.Run
	if err := json.Unmarshal(doc, &r); err != nil {
		return r, baton.Errorf(baton.Internal, "runs", "decode a stored run: %w", err)
	}
	return r, nil
}

// CreateRun stores r with Rev 1 and its outbound messages, in one
// statement, unless its flow has a run with r.Key: then it returns that run.
func (s *Store) CreateRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, bool, error) {
	if r.ID == "" || r.Flow == "" || r.Key == "" {
		return r, false, errorf(baton.Invalid, "create run", "a run needs an id, a flow and a key")
	}
	r.Rev = 1
	if r.Created.IsZero() {
		r.Created = time.Now()
	}
	if r.Updated.IsZero() {
		r.Updated = r.Created
	}
	if err := validJSON(r); err != nil {
		return r, false, err
	}
	doc := store.AppendRun(nil, &r)
	groups, types, ids, bodies := outboxArgs(out)
	op := "create run " + r.ID
	for range 3 {
		var n int64
		err := s.pool.QueryRow(ctx, s.q.createRun, clean(r.ID), clean(r.Flow), clean(r.Key), clean(string(r.Status)),
			r.Created, r.Updated, nullTime(r.Wake), doc, groups, types, ids, bodies).Scan(&n)
		if err != nil {
			if baton.ErrorCode(s.fail(op, err)) == baton.Conflict {
				return r, false, baton.Errorf(baton.Conflict, op, "a run with this id exists under another flow or key: %w", err)
			}
			return r, false, s.fail(op, err)
		}
		if n == 1 {
			return r, true, nil
		}
		// The key is taken: return its run. Runs are never deleted, so it is
		// there; the loop only guards against the impossible.
		var existing []byte
		err = s.pool.QueryRow(ctx, s.q.runByKey, clean(r.Flow), clean(r.Key)).Scan(&existing)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return r, false, s.fail(op, err)
		}
		got, err := decodeRun(existing)
		return got, false, err
	}
	return r, false, errorf(baton.Unavailable, op, "the run of its key vanished while it was created")
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, id string) (store.Run, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, s.q.run, clean(id)).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Run{}, errorf(baton.NotFound, "run "+id, "no such run")
	}
	if err != nil {
		return store.Run{}, s.fail("run "+id, err)
	}
	return decodeRun(doc)
}

// SaveRun stores r if the stored revision is r.Rev, with its outbound
// messages, in one statement: UPDATE ... WHERE rev = r.Rev.
func (s *Store) SaveRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, error) {
	if err := validJSON(r); err != nil {
		return r, err
	}
	expect := r.Rev
	r.Rev++
	if r.Updated.IsZero() {
		r.Updated = time.Now()
	}
	doc := store.AppendRun(nil, &r)
	groups, types, ids, bodies := outboxArgs(out)
	op := "save run " + r.ID
	var n int64
	err := s.pool.QueryRow(ctx, s.q.saveRun, clean(r.ID), expect, clean(string(r.Status)), r.Updated, nullTime(r.Wake),
		doc, groups, types, ids, bodies).Scan(&n)
	if err != nil {
		r.Rev = expect
		return r, s.fail(op, err)
	}
	if n == 1 {
		return r, nil
	}
	r.Rev = expect
	var got int64
	err = s.pool.QueryRow(ctx, s.q.runRev, clean(r.ID)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errorf(baton.NotFound, op, "no such run")
	}
	if err != nil {
		return r, s.fail(op, err)
	}
	return r, baton.Errorf(baton.Conflict, op, "revision %d was saved meanwhile (this save started from %d)", got, expect)
}

// maxRunPage caps a ListRuns page.
const maxRunPage = 1000

// ListRuns returns the runs q selects, newest first (by creation time, then
// id), with the indexes on flow, status, key and creation time.
func (s *Store) ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxRunPage {
		limit = maxRunPage
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Flow != "" {
		where = append(where, "flow = "+arg(clean(q.Flow)))
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(clean(string(q.Status))))
	}
	if q.Key != "" {
		where = append(where, "key = "+arg(clean(q.Key)))
	}
	if !q.Since.IsZero() {
		where = append(where, "created >= "+arg(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "created < "+arg(q.Until))
	}
	if q.After != "" {
		var created time.Time
		err := s.pool.QueryRow(ctx, s.q.runCursor, clean(q.After)).Scan(&created)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errorf(baton.NotFound, "list runs after "+q.After, "no such run")
		}
		if err != nil {
			return nil, s.fail("list runs", err)
		}
		// Strictly older than the last run of the previous page.
		where = append(where, fmt.Sprintf("(created, id) < (%s, %s)", arg(created), arg(clean(q.After))))
	}
	sql := "SELECT doc FROM " + s.q.runs
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY created DESC, id DESC LIMIT " + arg(limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, s.fail("list runs", err)
	}
	return s.collectRuns("list runs", rows)
}

func (s *Store) collectRuns(op string, rows pgx.Rows) ([]store.Run, error) {
	var out []store.Run
	var doc []byte
	_, err := pgx.ForEachRow(rows, []any{&doc}, func() error {
		r, err := decodeRun(doc)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// DueRuns returns up to limit runs whose Wake is set and not after now,
// earliest first. It lists and claims nothing: the claim is SaveRun's
// compare-and-set.
func (s *Store) DueRuns(ctx context.Context, now time.Time, limit int) ([]store.Run, error) {
	rows, err := s.pool.Query(ctx, s.q.dueRuns, now, max(limit, 0))
	if err != nil {
		return nil, s.fail("due runs", err)
	}
	return s.collectRuns("due runs", rows)
}

// ClaimOutbound returns up to limit messages not yet marked sent and not
// under another claim, oldest first, claimed until lease has passed on the
// database's clock.
func (s *Store) ClaimOutbound(ctx context.Context, limit int, lease time.Duration) ([]store.Pending, error) {
	rows, err := s.pool.Query(ctx, s.q.claimOutbox, max(limit, 0), lease.Microseconds())
	if err != nil {
		return nil, s.fail("outbox", err)
	}
	var out []store.Pending
	var id int64
	var p store.Pending
	_, err = pgx.ForEachRow(rows, []any{&id, &p.Group, &p.Type, &p.Outbound.ID, &p.Body}, func() error {
		p.ID = formatID(id)
		out = append(out, p)
		p = store.Pending{}
		return nil
	})
	if err != nil {
		return nil, s.fail("outbox", err)
	}
	// UPDATE ... RETURNING follows no order.
	slices.SortFunc(out, func(a, b store.Pending) int {
		x, _ := parseID(a.ID)
		y, _ := parseID(b.ID)
		return cmp.Compare(x, y)
	})
	return out, nil
}

// CountOutbound is the number of messages in the outbox, claimed or not.
func (s *Store) CountOutbound(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, s.q.countOutbox).Scan(&n); err != nil {
		return 0, s.fail("outbox", err)
	}
	return n, nil
}

// MarkSent removes sent messages; ids the store did not assign are ignored.
func (s *Store) MarkSent(ctx context.Context, ids ...string) error {
	nums := make([]int64, 0, len(ids))
	for _, id := range ids {
		if n, ok := parseID(id); ok {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.q.markSent, nums); err != nil {
		return s.fail("outbox", err)
	}
	return nil
}

// SaveSchedule stores s if the stored revision is s.Rev (0: new).
func (s *Store) SaveSchedule(ctx context.Context, sc store.Schedule) (store.Schedule, error) {
	if sc.Name == "" {
		return sc, errorf(baton.Invalid, "save schedule", "a schedule needs a name")
	}
	if len(sc.Input) > 0 && !json.Valid(sc.Input) {
		return sc, errorf(baton.Invalid, "save schedule "+sc.Name, "its input is not valid JSON")
	}
	expect := sc.Rev
	sc.Rev++
	doc, err := json.Marshal(sc)
	if err != nil {
		sc.Rev = expect
		return sc, baton.Errorf(baton.Invalid, "save schedule "+sc.Name, "encode: %w", err)
	}
	op := "save schedule " + sc.Name
	var n int64
	if expect == 0 {
		tag, err := s.pool.Exec(ctx, s.q.createSchedule, clean(sc.Name), string(doc))
		if err != nil {
			sc.Rev = expect
			return sc, s.fail(op, err)
		}
		n = tag.RowsAffected()
	} else {
		tag, err := s.pool.Exec(ctx, s.q.updateSchedule, clean(sc.Name), expect, string(doc))
		if err != nil {
			sc.Rev = expect
			return sc, s.fail(op, err)
		}
		n = tag.RowsAffected()
	}
	if n == 0 {
		sc.Rev = expect
		if expect == 0 {
			return sc, errorf(baton.Conflict, op, "a schedule of this name exists (a new one is saved with Rev 0)")
		}
		return sc, baton.Errorf(baton.Conflict, op, "revision %d is not the stored one (saved meanwhile, or deleted)", expect)
	}
	return sc, nil
}

func decodeSchedule(doc []byte) (store.Schedule, error) {
	var sc store.Schedule
	if err := json.Unmarshal(doc, &sc); err != nil {
		return sc, baton.Errorf(baton.Internal, "schedules", "decode a stored schedule: %w", err)
	}
	return sc, nil
}

// Schedule returns one schedule.
func (s *Store) Schedule(ctx context.Context, name string) (store.Schedule, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, s.q.schedule, clean(name)).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Schedule{}, errorf(baton.NotFound, "schedule "+name, "no such schedule")
	}
	if err != nil {
		return store.Schedule{}, s.fail("schedule "+name, err)
	}
	return decodeSchedule(doc)
}

// ListSchedules returns every schedule, by name.
func (s *Store) ListSchedules(ctx context.Context) ([]store.Schedule, error) {
	rows, err := s.pool.Query(ctx, s.q.schedules)
	if err != nil {
		return nil, s.fail("schedules", err)
	}
	var out []store.Schedule
	var doc []byte
	_, err = pgx.ForEachRow(rows, []any{&doc}, func() error {
		sc, err := decodeSchedule(doc)
		if err != nil {
			return err
		}
		out = append(out, sc)
		return nil
	})
	if err != nil {
		return nil, s.fail("schedules", err)
	}
	return out, nil
}

// DeleteSchedule removes a schedule.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, s.q.deleteSchedule, clean(name))
	if err != nil {
		return s.fail("schedule "+name, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf(baton.NotFound, "schedule "+name, "no such schedule")
	}
	return nil
}
