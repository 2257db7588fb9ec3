package embedded

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// The data directory and every file in it are the owner's alone, whatever
// the umask.
func TestDataDirectoryIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	b, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := b.Subscribe(ctx, "g", []string{"a.b.v1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, msg("a.b.v1", "1")); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Flush(); err != nil { // write a table file too
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(fileMode)
		if d.IsDir() {
			want = dirMode
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Errorf("%d files in %s; want the log, the manifest, a table and more", files, dir)
	}
}

// syncFailure fails the fsyncs of pebble's write-ahead log while on.
type syncFailure struct{ on atomic.Bool }

func (f *syncFailure) String() string { return "fail WAL syncs" }

func (f *syncFailure) MaybeError(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		if f.on.Load() && strings.HasSuffix(op.Path, ".log") {
			return errorfs.ErrInjected
		}
	}
	return nil
}

// A failed fsync stops the backend for good: the write fails, and so does
// everything after it, even once the disk would work again; Stopped is
// closed and Err says why. Reopened, the data directory has every write
// acknowledged before the failure. (The real disk cannot fail on demand:
// pebble's errorfs injects the failure.)
func TestFailedFsyncStopsTheBackend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	fault := &syncFailure{}
	b, err := openOn(Config{Dir: dir}, errorfs.Wrap(privateFS{vfs.Default}, fault))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, "g", []string{"a.b.v1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, msg("a.b.v1", "before")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Stopped():
		t.Fatal("stopped before any failure")
	default:
	}

	fault.on.Store(true)
	err = b.Publish(ctx, msg("a.b.v1", "during"))
	if baton.ErrorCode(err) != baton.Internal || !strings.Contains(err.Error(), "the backend has stopped") || !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("publish with a failing fsync: %v, want an Internal error saying the backend stopped, with the cause", err)
	}
	fault.on.Store(false)
	<-b.Stopped() // closed by the failure, not by Close
	if b.Err() == nil || !errors.Is(b.Err(), errorfs.ErrInjected) {
		t.Errorf("Err() = %v, want the failure", b.Err())
	}
	if err := b.Publish(ctx, msg("a.b.v1", "after")); err != b.Err() {
		t.Errorf("a publish after the failure: %v, want the failure", err)
	}
	if _, err := b.ListDead(ctx, "", 10); err != b.Err() {
		t.Errorf("a read after the failure: %v, want the failure", err)
	}
	if _, err := sub.Receive(ctx); err != b.Err() {
		t.Errorf("a receive after the failure: %v, want the failure", err)
	}
	if err := b.Close(); err != nil {
		t.Logf("close after the failure: %v", err)
	}

	b, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sub, err = b.Subscribe(ctx, "g", []string{"a.b.v1"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := sub.Receive(ctx)
	if err != nil || d.Message.Event.ID != "before" {
		t.Fatalf("after reopening, the first message is %+v, %v; want the one written before the failure", d.Message.Event, err)
	}
}
