package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

// source is what status, dlq, tail and map need: a data directory's embedded
// backend or a broker and a database opened by this process (direct), or
// the API client of the process that holds them (*client.Client).
type source interface {
	History(ctx context.Context, correlationID string) ([]store.Entry, error)
	Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error)
	// SinceWait is Since that waits up to wait for a first entry.
	SinceWait(ctx context.Context, after uint64, limit int, wait time.Duration) ([]store.Entry, error)
	ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error)
	Dead(ctx context.Context, id string) (store.DeadLetter, error)
	ReplayDead(ctx context.Context, id string) error
	DropDead(ctx context.Context, id string) error
	// Map draws the choreography map of the journal's last window.
	Map(ctx context.Context, window time.Duration) (traffic.Map, error)
	// Runs lists the runs q selects, newest first.
	Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error)
	Close() error
}

var (
	_ source = (*client.Client)(nil)
	_ source = direct{}
)

// socketName is the control socket a process serves in the data directory
// it holds.
const socketName = "baton.sock"

// direct is a transport and a store this process opened: an idle data
// directory's embedded backend, or a broker and a database. Nothing in this
// process runs services on them.
type direct struct {
	store.Store
	tp    bus.Transport
	close func() error
}

// Close closes the transport and the store.
func (d direct) Close() error { return d.close() }

// ReplayDead puts the dead letter back on its group's queue; it is handled
// when a process runs the group's services.
func (d direct) ReplayDead(ctx context.Context, id string) error {
	return bus.Replay(ctx, d.tp, d.Store, id)
}

// Map draws the map from the store's journal, as a server does for
// GET /v1/map.
func (d direct) Map(ctx context.Context, window time.Duration) (traffic.Map, error) {
	now := time.Now()
	return traffic.Build(ctx, d.Store, traffic.Query{From: now.Add(-window), To: now})
}

// Runs lists the runs q selects from the store.
func (d direct) Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	return d.ListRuns(ctx, q)
}

// pollEvery is how often a direct SinceWait looks for new entries.
const pollEvery = 200 * time.Millisecond

func (d direct) SinceWait(ctx context.Context, after uint64, limit int, wait time.Duration) ([]store.Entry, error) {
	deadline := time.Now().Add(wait)
	for {
		entries, err := d.Since(ctx, after, limit)
		if err != nil || len(entries) > 0 || !time.Now().Before(deadline) {
			return entries, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// openSource opens the data directory dir, or reaches the process that holds
// it through its control socket. live reports the latter.
func openSource(ctx context.Context, dir string) (src source, live bool, err error) {
	if !isDataDir(dir) {
		return nil, false, fmt.Errorf("no data directory at %s; run baton demo --data %s --keep first", dir, dir)
	}
	b, err := embedded.Open(embedded.Config{Dir: dir, Retention: store.KeepAll})
	if err == nil {
		return direct{Store: b, tp: b, close: b.Close}, false, nil
	}
	if baton.ErrorCode(err) != baton.Unavailable {
		return nil, false, err
	}
	sock := filepath.Join(dir, socketName)
	if _, serr := os.Stat(sock); serr != nil {
		return nil, false, fmt.Errorf("data directory %s is in use by another process that serves no control socket %s (a baton tail or status on it? stop it and try again): %w", dir, sock, err)
	}
	c := client.Unix(sock)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, perr := c.Since(pingCtx, ^uint64(0)>>1, 1); perr != nil {
		c.Close()
		return nil, false, fmt.Errorf("data directory %s is in use, but its control socket %s does not answer: %w", dir, sock, perr)
	}
	return c, true, nil
}

// openDirect opens the transport and the store of c: a broker and a
// database, reached directly.
func openDirect(ctx context.Context, c *backendConfig) (source, error) {
	// A tool keeps everything: the processes that run the parts sweep, by
	// their own --retention.
	tp, st, closeAll, err := openBackends(ctx, c.bus, c.store, "", c.namespace, store.KeepAll)
	if err != nil {
		return nil, err
	}
	return direct{Store: st, tp: tp, close: closeAll}, nil
}

// isDataDir reports whether dir holds a data directory: the embedded
// backend (pebble) writes its manifest there on the first open.
func isDataDir(dir string) bool {
	m, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	return err == nil && len(m) > 0
}
