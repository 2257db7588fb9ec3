package pgstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/jackc/pgx/v5"
)

var _ store.Deliveries = (*Store)(nil)

// The webhook outbox is the table webhook_deliveries (migration 0005). A
// claim moves next_at forward under FOR UPDATE SKIP LOCKED, so concurrent
// claims take different rows.
const (
	addDeliveries = `INSERT INTO {s}.webhook_deliveries (id, webhook, kind, body, created, attempts, next_at, last_error)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::integer[], $7::timestamptz[], $8::text[])
		ON CONFLICT (id) DO NOTHING`
	claimDeliveries = `UPDATE {s}.webhook_deliveries d SET next_at = $4
		FROM (SELECT id, next_at FROM {s}.webhook_deliveries WHERE webhook = $1 AND next_at <= $2
			ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) c
		WHERE d.id = c.id
		RETURNING d.id, d.webhook, d.kind, d.body, d.created, d.attempts, d.next_at, d.last_error, c.next_at`
	retryDelivery  = `UPDATE {s}.webhook_deliveries SET attempts = $2, next_at = $3, last_error = $4 WHERE id = $1`
	deleteDelivery = `DELETE FROM {s}.webhook_deliveries WHERE id = $1`
	countDelivery  = `SELECT count(*) FROM {s}.webhook_deliveries`
)

// sql puts the schema's name into a statement.
func (s *Store) sql(q string) string {
	return strings.ReplaceAll(q, "{s}", pgx.Identifier{s.cfg.Schema}.Sanitize())
}

// AddDeliveries stores ds; ids already stored are left as they are.
func (s *Store) AddDeliveries(ctx context.Context, ds ...store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	var (
		ids, hooks, kinds, errs = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		bodies                  = make([][]byte, n)
		created, next           = make([]time.Time, n), make([]time.Time, n)
		attempts                = make([]int32, n)
	)
	for i, d := range ds {
		if d.ID == "" {
			return baton.Errorf(baton.Invalid, "add webhook delivery", "empty id")
		}
		ids[i], hooks[i], kinds[i], bodies[i], created[i], attempts[i], next[i], errs[i] =
			d.ID, d.Webhook, d.Kind, d.Body, d.Created, int32(d.Attempts), d.Next, d.LastError
		if bodies[i] == nil {
			bodies[i] = []byte{}
		}
	}
	if _, err := s.pool.Exec(ctx, s.sql(addDeliveries), ids, hooks, kinds, bodies, created, attempts, next, errs); err != nil {
		return s.fail("add webhook deliveries", err)
	}
	return nil
}

// ClaimDeliveries returns up to limit due deliveries of webhook, earliest
// Next first, with Next moved to now+lease.
func (s *Store) ClaimDeliveries(ctx context.Context, webhook string, now time.Time, limit int, lease time.Duration) ([]store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.sql(claimDeliveries), webhook, now, limit, now.Add(lease))
	if err != nil {
		return nil, s.fail("claim webhook deliveries", err)
	}
	type claimed struct {
		d   store.Delivery
		was time.Time
	}
	var (
		out      []claimed
		c        claimed
		attempts int32
	)
	_, err = pgx.ForEachRow(rows, []any{&c.d.ID, &c.d.Webhook, &c.d.Kind, &c.d.Body, &c.d.Created, &attempts, &c.d.Next, &c.d.LastError, &c.was}, func() error {
		c.d.Attempts = int(attempts)
		out = append(out, c)
		c = claimed{}
		return nil
	})
	if err != nil {
		return nil, s.fail("claim webhook deliveries", err)
	}
	// UPDATE ... RETURNING follows no order.
	slices.SortFunc(out, func(a, b claimed) int {
		if c := a.was.Compare(b.was); c != 0 {
			return c
		}
		return cmp.Compare(a.d.ID, b.d.ID)
	})
	ds := make([]store.Delivery, len(out))
	for i, c := range out {
		ds[i] = c.d
	}
	return ds, nil
}

// RetryDelivery saves d's Attempts, Next and LastError, ending its claim.
func (s *Store) RetryDelivery(ctx context.Context, d store.Delivery) error {
	if _, err := s.pool.Exec(ctx, s.sql(retryDelivery), d.ID, int32(d.Attempts), d.Next, d.LastError); err != nil {
		return s.fail("retry webhook delivery", err)
	}
	return nil
}

// DeleteDelivery removes a delivery; an unknown id is not an error.
func (s *Store) DeleteDelivery(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, s.sql(deleteDelivery), id); err != nil {
		return s.fail("delete webhook delivery", err)
	}
	return nil
}

// CountDeliveries is the number of deliveries stored.
func (s *Store) CountDeliveries(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, s.sql(countDelivery)).Scan(&n); err != nil {
		return 0, s.fail("count webhook deliveries", err)
	}
	return n, nil
}
