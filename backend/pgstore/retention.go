package pgstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/batonhq/baton/store"
)

var _ store.Sweeper = (*Store)(nil)

// sweepBatch is how many rows one statement of a sweep deletes.
const sweepBatch = 1000

// retentionQueries are the statements of a sweep, with the schema's name
// in them.
type retentionQueries struct {
	journal, deadBefore, deadOverCap, runs string
}

func newRetentionQueries(schema string) retentionQueries {
	r := strings.NewReplacer("{s}", schema)
	// The journal and the dead letters are swept in the order they were
	// written, up to the first row that is not old: by primary key, with
	// no index on the time for every append to maintain.
	oldestFirst := `WITH head AS (SELECT {k} AS k, at FROM {s}.{t} ORDER BY {k} LIMIT $2),
			young AS (SELECT min(k) AS k FROM head WHERE at >= $1),
			gone AS (DELETE FROM {s}.{t} WHERE {k} IN (SELECT k FROM head WHERE k < coalesce((SELECT k FROM young), 9223372036854775807)) RETURNING 1)
		SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM head)`
	return retentionQueries{
		journal:    r.Replace(strings.NewReplacer("{k}", "seq", "{t}", "journal").Replace(oldestFirst)),
		deadBefore: r.Replace(strings.NewReplacer("{k}", "id", "{t}", "dead_letters").Replace(oldestFirst)),
		// The oldest beyond the newest $1: sweeps running at once (several
		// processes share the store) delete the same rows, never more.
		deadOverCap: r.Replace(`DELETE FROM {s}.dead_letters WHERE id IN (SELECT id FROM {s}.dead_letters ORDER BY id DESC OFFSET $1 LIMIT $2)`),
		runs: r.Replace(`DELETE FROM {s}.runs WHERE id IN (
			SELECT id FROM {s}.runs WHERE status IN ('completed', 'failed', 'cancelled') AND updated < $1
			ORDER BY updated, id LIMIT $2 FOR UPDATE SKIP LOCKED)`),
	}
}

// Retention is the store's, defaults applied.
func (s *Store) Retention() store.Retention { return s.cfg.Retention }

// Swept is what the sweeps removed since Open.
func (s *Store) Swept() store.Swept { return s.sweeps.Total() }

// Sweep removes the journal entries, ended runs and dead letters older than
// the retention at now, and the oldest dead letters beyond the cap. Several
// processes sharing the schema may sweep at once: each row is deleted once.
func (s *Store) Sweep(ctx context.Context, now time.Time) (store.Swept, error) {
	return s.sweeps.Sweep(ctx, now)
}

func (s *Store) sweepOldest(ctx context.Context, op, query string, cutoff time.Time) (int, error) {
	total := 0
	for {
		var gone, read int
		if err := s.pool.QueryRow(ctx, query, cutoff, sweepBatch).Scan(&gone, &read); err != nil {
			return total, s.fail(op, err)
		}
		total += gone
		if gone < read || read < sweepBatch {
			return total, nil
		}
	}
}

func (s *Store) sweepRuns(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, s.rq.runs, cutoff, sweepBatch)
		if err != nil {
			return total, s.fail("sweep runs", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < sweepBatch {
			return total, nil
		}
	}
}

func (s *Store) sweepDeadOverCap(ctx context.Context) (int, error) {
	limit := s.cfg.Retention.DeadCap
	if limit < 0 {
		return 0, nil
	}
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, s.rq.deadOverCap, limit, sweepBatch)
		if err != nil {
			return total, s.fail("sweep dead letters", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < sweepBatch {
			return total, nil
		}
	}
}

// closing reports whether a sweep failed because the store is closing.
func (s *Store) closing(err error) bool {
	select {
	case <-s.done:
		return true
	default:
		return errors.Is(err, context.Canceled)
	}
}
