package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// control serves the API on the unix socket DIR/baton.sock while this
// process holds the data directory, so status, dlq and tail reach it.
type control struct {
	path   string
	srv    *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// serveControl starts serving the journal and dead letters of s and t, and
// the runs of co when not nil. The caller holds the data directory, so a
// socket file already there is a stale one from a process that died.
func serveControl(dir string, s store.Store, t bus.Transport, co api.Coordinator) (*control, error) {
	h, err := api.New(api.Config{Store: s, Transport: t, Coordinator: co})
	if err != nil {
		return nil, err
	}
	return serveControlHandler(dir, h)
}

// serveControlHandler serves h on the control socket of dir.
func serveControlHandler(dir string, h http.Handler) (*control, error) {
	path := filepath.Join(dir, socketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	c := &control{
		path:   path,
		cancel: cancel,
		done:   make(chan struct{}),
		srv: &http.Server{
			Handler:           h,
			BaseContext:       func(net.Listener) context.Context { return base },
			ReadHeaderTimeout: 10 * time.Second,
		},
	}
	go func() {
		defer close(c.done)
		_ = c.srv.Serve(ln) // returns when closed
	}()
	return c, nil
}

// listenPrivate listens on the unix socket path, which only this user may
// connect to: the API can drop dead letters. The socket is made in a new
// 0700 directory beside path, made 0600 there, and then renamed to path,
// so it is never reachable with another mode, whatever the umask and the
// mode of path's directory. (Setting the umask around Listen would be
// process-wide, and chmod after Listen leaves a moment when others may
// connect.)
func listenPrivate(path string) (net.Listener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".control-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	made := filepath.Join(tmp, filepath.Base(path))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: made, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // close removes the socket by its final name
	if err := os.Chmod(made, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(made, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// close ends long polls, waits for requests in flight until ctx ends, and
// removes the socket.
func (c *control) close(ctx context.Context) {
	c.cancel()
	if err := c.srv.Shutdown(ctx); err != nil {
		c.srv.Close()
	}
	<-c.done
	os.Remove(c.path)
}
