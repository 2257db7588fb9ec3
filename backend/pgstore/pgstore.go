// Package pgstore is Baton's store on PostgreSQL: inbox, journal, dead
// letters, flow runs with their outbox, and schedules, in tables of one
// schema. Several coordinators and workers may share one database.
//
// It uses github.com/jackc/pgx/v5 with its pgxpool: the maintained, most
// used native Go driver for PostgreSQL, with a connection pool, batches and
// COPY support, and without database/sql's extra layer.
//
// Open applies the migrations embedded in the binary (migrations/*.sql),
// each in its own transaction, recorded in the table schema_migrations,
// under an advisory lock so that processes opening the same schema at once
// are safe.
//
// Runs are rows whose indexed fields (flow, business key, status, creation
// and wake times) are columns and whose whole document is a json column, so
// they can be searched with SQL:
//
//	SELECT id, status, created FROM baton.runs
//	WHERE flow = 'order' AND created >= now() - interval '1 hour'
//	ORDER BY created DESC;
//
// A run transition and the messages it sends are one statement, hence one
// transaction: the run row is written and the messages inserted into the
// outbox table, where a relay finds them (store.Outbox) and deletes them
// once published.
//
// DueRuns only lists: it reads with FOR UPDATE SKIP LOCKED, so it passes
// over rows that another coordinator is saving at that moment, but it holds
// no lock after it returns. The work is claimed by what follows: SaveRun's
// compare-and-set on the run's revision. ClaimOutbound claims
// for real: it selects with FOR UPDATE SKIP LOCKED the messages whose claim
// has lapsed and sets their claimed_until in the same statement.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Store.
type Config struct {
	URL            string        // postgres://user:password@host:port/database?sslmode=... ; required
	Schema         string        // the schema holding the tables; default "baton"
	InboxRetention time.Duration // how long inbox marks are kept; default 24h
	Logger         *slog.Logger  // default slog.Default()
	// Retention bounds the journal, the ended runs and the dead letters
	// (zero: store.Retention's defaults); they are swept in the background.
	Retention store.Retention
}

// Store is a store.Store on PostgreSQL. It also implements store.Expirer
// and store.Outbox.
type Store struct {
	pool    *pgxpool.Pool
	cfg     Config
	q       queries
	rq      retentionQueries
	sweeps  *store.Sweeps
	lockJ   int64 // the advisory lock that orders journal appends
	done    chan struct{}
	appends chan *appendReq
	seens   chan *seenReq
	stop    context.CancelFunc // cancels the inbox reader's statement on Close
	bg      sync.WaitGroup
	closed  sync.Once
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Expirer = (*Store)(nil)
	_ store.Outbox  = (*Store)(nil)
	_ store.Settler = (*Store)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects to PostgreSQL, applies the migrations the schema lacks and
// returns the store. Until Close, a sweeper removes expired inbox marks
// every minute, another applies cfg.Retention at once and every
// store.SweepEvery, a writer gathers concurrent journal appends and a
// reader concurrent Seens.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, baton.Errorf(baton.Invalid, "open postgres store", "no URL given (postgres://user@host:5432/database)")
	}
	if cfg.Schema == "" {
		cfg.Schema = "baton"
	}
	if cfg.InboxRetention <= 0 {
		cfg.InboxRetention = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Retention = cfg.Retention.WithDefaults()
	where := redact(cfg.URL)
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "open postgres store", "cannot parse the URL %s (expected postgres://user@host:5432/database)", where)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "open postgres store", "%s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, baton.Errorf(baton.Unavailable, "open postgres store", "cannot reach PostgreSQL at %s: %w", where, err)
	}
	s := &Store{
		pool:    pool,
		cfg:     cfg,
		q:       newQueries(pgx.Identifier{cfg.Schema}.Sanitize()),
		rq:      newRetentionQueries(pgx.Identifier{cfg.Schema}.Sanitize()),
		lockJ:   lockKey("journal", cfg.Schema),
		done:    make(chan struct{}),
		appends: make(chan *appendReq, 256),
		seens:   make(chan *seenReq, maxSeenBatch),
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	reads, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.sweeps = store.NewSweeps("pgstore", cfg.Logger, s.cfg.Retention, store.SweepSteps{
		Journal: func(ctx context.Context, cutoff time.Time) (int, error) {
			return s.sweepOldest(ctx, "sweep journal", s.rq.journal, cutoff)
		},
		Runs: s.sweepRuns,
		DeadBefore: func(ctx context.Context, cutoff time.Time) (int, error) {
			return s.sweepOldest(ctx, "sweep dead letters", s.rq.deadBefore, cutoff)
		},
		DeadOverCap: s.sweepDeadOverCap,
	})
	s.bg.Add(4)
	go s.sweep()
	go s.writeJournal()
	go s.readInbox(reads)
	go func() {
		defer s.bg.Done()
		s.sweeps.Run(s.done, s.closing)
	}()
	return s, nil
}

// Close stops the sweeper, the journal writer (after the batch it is
// writing) and the inbox reader (cancelling its lookup: the Seens waiting
// return at once), then closes the connections.
func (s *Store) Close() error {
	s.closed.Do(func() {
		close(s.done)
		s.stop()
		s.bg.Wait()
		s.pool.Close()
	})
	return nil
}

// redact returns the URL without its password, for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(the configured URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// lockKey is an advisory lock's key, per purpose and schema.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("baton/pgstore/" + purpose + "/" + schema))
	return int64(h.Sum64())
}

// migrate applies the embedded migrations the schema lacks, in name order,
// each in a transaction, under a session advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	const op = "migrate postgres store"
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return baton.Errorf(baton.Internal, op, "%w", err)
	}
	slices.Sort(names)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	defer conn.Release()
	key := lockKey("migrate", s.cfg.Schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return s.fail(op, err)
	}
	defer func() {
		// A lost connection releases the lock too.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
	}()
	schema := pgx.Identifier{s.cfg.Schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return s.fail(op, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+schema+`.schema_migrations (
		version text COLLATE "C" PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return s.fail(op, err)
	}
	rows, err := conn.Query(ctx, "SELECT version FROM "+schema+".schema_migrations")
	if err != nil {
		return s.fail(op, err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return s.fail(op, err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		if slices.Contains(applied, version) {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return baton.Errorf(baton.Internal, op, "%w", err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+schema+".schema_migrations (version) VALUES ($1)", version)
			return err
		})
		if err != nil {
			return s.fail(op+" "+version, err)
		}
		s.cfg.Logger.Info("pgstore: migration applied", "schema", s.cfg.Schema, "version", version)
	}
	return nil
}

// sweep removes expired inbox marks every minute.
func (s *Store) sweep() {
	defer s.bg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := s.ExpireInbox(ctx, time.Now()); err != nil {
				s.cfg.Logger.Error("pgstore: inbox sweep failed", "err", err)
			}
			cancel()
		}
	}
}

// fail translates a driver error into Baton's codes: no rows is not_found,
// a unique violation a conflict, bad data invalid, and a connection that
// is away (or a server shutting down or out of resources) unavailable.
func (s *Store) fail(op string, err error) error {
	var be *baton.Error
	if errors.As(err, &be) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &baton.Error{Code: baton.NotFound, Op: op, Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code := baton.Internal
		switch {
		case pe.Code == "23505": // unique_violation
			code = baton.Conflict
		case pe.Code == "40001" || pe.Code == "40P01": // serialization failure, deadlock
			code = baton.Conflict
		case strings.HasPrefix(pe.Code, "22"): // data exception: bad encoding, a value out of range
			code = baton.Invalid
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"),
			strings.HasPrefix(pe.Code, "57"), pe.Code == "55P03": // connection, resources, shutdown, lock timeout
			code = baton.Unavailable
		}
		return &baton.Error{Code: code, Op: op, Err: err}
	}
	// Everything else is the way to the server: a dial or I/O error, a
	// closed pool, a context that ended.
	return &baton.Error{Code: baton.Unavailable, Op: op, Err: err}
}

// clean makes s storable in a text column, which holds neither NUL nor
// invalid UTF-8.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// nullTime is t, or NULL when t is zero.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func formatID(id int64) string { return strconv.FormatInt(id, 10) }

// parseID reads an id the store assigned; ok is false for anything else.
func parseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0
}

// queries are the statements, with the schema's name in them.
type queries struct {
	seenMany, markSeen, markSeenMany, forget, expire    string
	appendJournal, history, since                       string
	addDead, dead, listDead, dropDead                   string
	createRun, runByKey, run, saveRun, runRev, dueRuns  string
	runCursor                                           string
	claimOutbox, markSent, countOutbox                  string
	createSchedule, updateSchedule, schedule, schedules string
	deleteSchedule                                      string
	runs                                                string // the table, for ListRuns
}

func newQueries(schema string) queries {
	r := strings.NewReplacer("{s}", schema)
	q := queries{
		// A probe of the primary key per mark asked, which LIMIT keeps the
		// planner from turning into a join: with a plan made while the
		// table was small, a join reads every live mark, at every lookup.
		seenMany: `SELECT u.g, u.i FROM unnest($1::text[], $2::text[]) AS u(g, i)
			CROSS JOIN LATERAL (SELECT FROM {s}.inbox WHERE grp = u.g AND id = u.i AND expires > $3 LIMIT 1) AS live`,
		markSeen: `INSERT INTO {s}.inbox (grp, id, expires) VALUES ($1, $2, $3) ON CONFLICT (grp, id) DO UPDATE SET expires = excluded.expires`,
		markSeenMany: `INSERT INTO {s}.inbox (grp, id, expires) SELECT g, i, $3 FROM unnest($1::text[], $2::text[]) AS u(g, i)
			ON CONFLICT (grp, id) DO UPDATE SET expires = excluded.expires`,
		forget: `DELETE FROM {s}.inbox WHERE grp = $1 AND id = $2`,
		expire: `DELETE FROM {s}.inbox WHERE (grp, id) IN (
			SELECT grp, id FROM {s}.inbox WHERE expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,

		// The lock, taken before any seq is drawn and held to the commit,
		// makes entries visible in seq order: a reader of Since never sees a
		// seq before a smaller one that is still to commit.
		appendJournal: `WITH l AS (SELECT pg_advisory_xact_lock($1))
			INSERT INTO {s}.journal (correlation_id, at, outcome, entry)
			SELECT u.c, u.t, u.o, u.e FROM l, unnest($2::text[], $3::timestamptz[], $4::text[], $5::json[]) WITH ORDINALITY AS u(c, t, o, e, n)
			ORDER BY u.n
			RETURNING seq`,
		history: `SELECT seq, entry FROM {s}.journal WHERE correlation_id = $1 ORDER BY seq`,
		since:   `SELECT seq, entry FROM {s}.journal WHERE seq > $1 ORDER BY seq LIMIT $2`,

		addDead: `INSERT INTO {s}.dead_letters (grp, type, event_id, correlation_id, attempts, reason, at, body, meta, truncated, size)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		dead:     `SELECT id, grp, type, event_id, correlation_id, attempts, reason, at, body, meta, truncated, size FROM {s}.dead_letters WHERE id = $1`,
		listDead: `SELECT id, grp, type, event_id, correlation_id, attempts, reason, at, body, meta, truncated, size FROM {s}.dead_letters WHERE id > $1 ORDER BY id LIMIT $2`,
		dropDead: `DELETE FROM {s}.dead_letters WHERE id = $1`,

		createRun: `WITH ins AS (
				INSERT INTO {s}.runs (id, flow, key, status, created, updated, rev, wake, doc)
				VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)
				ON CONFLICT (flow, key) DO NOTHING
				RETURNING id
			), sent AS (
				INSERT INTO {s}.outbox (grp, type, msg_id, body)
				SELECT o.g, o.t, o.m, o.b FROM ins, unnest($9::text[], $10::text[], $11::text[], $12::bytea[]) WITH ORDINALITY AS o(g, t, m, b, n)
				ORDER BY o.n
			)
			SELECT count(*) FROM ins`,
		runByKey: `SELECT doc FROM {s}.runs WHERE flow = $1 AND key = $2`,
		run:      `SELECT doc FROM {s}.runs WHERE id = $1`,
		saveRun: `WITH upd AS (
				UPDATE {s}.runs SET status = $3, updated = $4, rev = $2 + 1, wake = $5, doc = $6
				WHERE id = $1 AND rev = $2
				RETURNING id
			), sent AS (
				INSERT INTO {s}.outbox (grp, type, msg_id, body)
				SELECT o.g, o.t, o.m, o.b FROM upd, unnest($7::text[], $8::text[], $9::text[], $10::bytea[]) WITH ORDINALITY AS o(g, t, m, b, n)
				ORDER BY o.n
			)
			SELECT count(*) FROM upd`,
		runRev:    `SELECT rev FROM {s}.runs WHERE id = $1`,
		runCursor: `SELECT created FROM {s}.runs WHERE id = $1`,
		dueRuns:   `SELECT doc FROM {s}.runs WHERE wake <= $1 ORDER BY wake, id LIMIT $2 FOR UPDATE SKIP LOCKED`,

		claimOutbox: `UPDATE {s}.outbox SET claimed_until = now() + $2 * interval '1 microsecond'
			WHERE id IN (SELECT id FROM {s}.outbox WHERE claimed_until <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
			RETURNING id, grp, type, msg_id, body`,
		markSent:    `DELETE FROM {s}.outbox WHERE id = ANY($1)`,
		countOutbox: `SELECT count(*) FROM {s}.outbox`,

		createSchedule: `INSERT INTO {s}.schedules (name, rev, doc) VALUES ($1, 1, $2) ON CONFLICT (name) DO NOTHING`,
		updateSchedule: `UPDATE {s}.schedules SET rev = $2 + 1, doc = $3 WHERE name = $1 AND rev = $2`,
		schedule:       `SELECT doc FROM {s}.schedules WHERE name = $1`,
		schedules:      `SELECT doc FROM {s}.schedules ORDER BY name`,
		deleteSchedule: `DELETE FROM {s}.schedules WHERE name = $1`,

		runs: `{s}.runs`,
	}
	for _, p := range []*string{
		&q.seenMany, &q.markSeen, &q.markSeenMany, &q.forget, &q.expire,
		&q.appendJournal, &q.history, &q.since, &q.addDead, &q.dead, &q.listDead, &q.dropDead,
		&q.createRun, &q.runByKey, &q.run, &q.saveRun, &q.runRev, &q.runCursor, &q.dueRuns,
		&q.claimOutbox, &q.markSent, &q.countOutbox, &q.createSchedule, &q.updateSchedule, &q.schedule, &q.schedules,
		&q.deleteSchedule, &q.runs,
	} {
		*p = r.Replace(*p)
	}
	return q
}

// errorf is baton.Errorf for messages without formatting verbs.
func errorf(code baton.Code, op, msg string) error {
	return &baton.Error{Code: code, Op: op, Err: errors.New(msg)}
}
