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
)

// source is what status, dlq and tail need from a data directory. Both an
// embedded backend opened on it (direct) and the API client of the process
// that holds it (*client.Client) implement it.
type source interface {
	History(ctx context.Context, correlationID string) ([]store.Entry, error)
	Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error)
	// SinceWait is Since that waits up to wait for a first entry.
	SinceWait(ctx context.Context, after uint64, limit int, wait time.Duration) ([]store.Entry, error)
	ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error)
	Dead(ctx context.Context, id string) (store.DeadLetter, error)
	ReplayDead(ctx context.Context, id string) error
	DropDead(ctx context.Context, id string) error
	Close() error
}

var (
	_ source = (*client.Client)(nil)
	_ source = direct{}
)

// socketName is the control socket a process serves in the data directory
// it holds.
const socketName = "baton.sock"

// direct is a data directory opened by this process: nothing else runs the
// services on it.
type direct struct{ *embedded.Backend }

// ReplayDead puts the dead letter back on its queue; it is handled when a
// process next runs the services on the directory.
func (d direct) ReplayDead(ctx context.Context, id string) error {
	return bus.Replay(ctx, d.Backend, d.Backend, id)
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
	b, err := embedded.Open(embedded.Config{Dir: dir})
	if err == nil {
		return direct{b}, false, nil
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

// isDataDir reports whether dir holds a data directory: the embedded
// backend (pebble) writes its manifest there on the first open.
func isDataDir(dir string) bool {
	m, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	return err == nil && len(m) > 0
}
