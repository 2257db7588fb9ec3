package main

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The worker makes its data directory 0700 and every file in it, the
// embedded backend's and the ledger's, 0600.
func TestWorkerDataDirectoryIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, &env{stdout: &out, stderr: &errOut}, []string{"worker", "--service", "order", "--data", dir})
	}()
	for !strings.Contains(errOut.String(), "baton worker: services order") {
		select {
		case code := <-exited:
			t.Fatalf("worker exited with %d before starting\nstderr:\n%s", code, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("worker exited with %d\nstderr:\n%s", code, errOut.String())
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files = append(files, d.Name())
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(files, " "), "ledger-order.jsonl") {
		t.Errorf("files %v: no ledger", files)
	}
}
