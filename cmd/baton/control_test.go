package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The control socket is never in the data directory with a mode that lets
// another user connect: it is made elsewhere, made 0600, and moved in. The
// directory here is 0755 and inotify tells how the socket appeared there,
// since the moment a chmod after Listen leaves open is too short to see by
// looking.
func TestControlSocketIsPrivateFromTheStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}

	c, err := serveControlHandler(dir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close(context.Background())

	buf := make([]byte, 64<<10)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	var created, moved []string
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
		if ev.Mask&unix.IN_CREATE != 0 {
			created = append(created, name)
		}
		if ev.Mask&unix.IN_MOVED_TO != 0 {
			moved = append(moved, name)
		}
		off += unix.SizeofInotifyEvent + int(ev.Len)
	}
	for _, name := range created {
		if name == socketName {
			t.Errorf("the socket was created in the data directory (created: %v), so others could connect until its chmod", created)
		}
	}
	if len(moved) != 1 || moved[0] != socketName {
		t.Errorf("moved into the data directory: %v, want the socket", moved)
	}

	fi, err := os.Stat(filepath.Join(dir, socketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("the socket's mode is %v, want a socket with 0600", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the data directory holds %d entries, want only the socket: %v", len(entries), entries)
	}
	conn, err := net.Dial("unix", filepath.Join(dir, socketName))
	if err != nil {
		t.Fatalf("the socket does not answer where it was moved: %v", err)
	}
	conn.Close()
}
