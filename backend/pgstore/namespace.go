package pgstore

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton"
)

// DeleteNamespace drops the schema cfg.Schema (default "baton") with
// everything in it: journal, inbox, dead letters, runs, outbox and
// schedules. It reports whether the schema existed.
func DeleteNamespace(ctx context.Context, cfg Config) (bool, error) {
	const op = "pgstore delete namespace"
	conn, schema, exists, err := connectSchema(ctx, op, cfg)
	if err != nil || !exists {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return false, baton.Errorf(baton.Unavailable, op, "drop schema %s: %w", schema, err)
	}
	return true, nil
}

// Groups returns, sorted, the consumer groups the store of cfg.Schema
// knows: those with inbox marks, dead letters, journal entries or messages
// in the outbox. It creates nothing: a schema that does not exist has none.
func Groups(ctx context.Context, cfg Config) ([]string, error) {
	const op = "pgstore groups"
	conn, schema, exists, err := connectSchema(ctx, op, cfg)
	if err != nil || !exists {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s := pgx.Identifier{schema}.Sanitize()
	rows, err := conn.Query(ctx, `SELECT grp FROM `+s+`.inbox
		UNION SELECT grp FROM `+s+`.dead_letters
		UNION SELECT grp FROM `+s+`.outbox
		UNION SELECT entry->>'group' FROM `+s+`.journal WHERE entry->>'group' IS NOT NULL`)
	if err != nil {
		return nil, baton.Errorf(baton.Unavailable, op, "read the groups of schema %s: %w", schema, err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, baton.Errorf(baton.Unavailable, op, "read the groups of schema %s: %w", schema, err)
	}
	groups = slices.DeleteFunc(groups, func(g string) bool { return g == "" })
	slices.Sort(groups)
	return groups, nil
}

// connectSchema connects to the database of cfg and reports whether its
// schema exists; conn is nil when it does not.
func connectSchema(ctx context.Context, op string, cfg Config) (conn *pgx.Conn, schema string, exists bool, err error) {
	if cfg.URL == "" {
		return nil, "", false, baton.Errorf(baton.Invalid, op, "no URL given (postgres://user@host:5432/database)")
	}
	schema = cfg.Schema
	if schema == "" {
		schema = "baton"
	}
	where := redact(cfg.URL)
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, "", false, baton.Errorf(baton.Invalid, op, "cannot parse the URL %s (expected postgres://user@host:5432/database)", where)
	}
	conn, err = pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, "", false, baton.Errorf(baton.Unavailable, op, "cannot reach PostgreSQL at %s: %w", where, err)
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, "", false, baton.Errorf(baton.Unavailable, op, "look for schema %s: %w", schema, err)
	}
	if !exists {
		conn.Close(context.WithoutCancel(ctx))
		return nil, schema, false, nil
	}
	return conn, schema, true, nil
}
