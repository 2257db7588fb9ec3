package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/client"
)

// defaultServer is the API of a baton server started without --addr.
const defaultServer = "http://" + api.DefaultAddr

// Environment variables the commands read.
const (
	envServer        = "BATON_SERVER"
	envToken         = "BATON_TOKEN"
	envWebhookSecret = "BATON_WEBHOOK_SECRET"
)

// target is where a command finds Baton: the API of a baton server
// (--server URL) or a data directory (--data DIR), opened directly or
// reached through the control socket of the process that holds it.
type target struct {
	f            *flags
	e            *env
	server       *string
	token        *string
	data         *string
	preferServer bool

	// Resolved by resolve.
	url string // the server's API, or "" for the data directory
	dir string
}

// targetFlags adds --server, --token and --data. preferServer says which
// one is used when neither is given: the server (at BATON_SERVER, or
// defaultServer), or the data directory baton-data (unless BATON_SERVER is
// set).
func (f *flags) targetFlags(e *env, preferServer bool) *target {
	t := &target{f: f, e: e, preferServer: preferServer}
	if preferServer {
		t.server = f.String("server", "", "the `URL` of a baton server's API (default: "+envServer+", or "+defaultServer+")")
		t.data = f.String("data", "", "work on the data `DIR` instead of a server: directly when idle, or through the socket of the baton server that holds it (default: the server)")
	} else {
		t.server = f.String("server", "", "ask the baton server at `URL` instead of a data directory (default: "+envServer+" if set, else --data)")
		t.data = f.dataFlag()
	}
	t.token = f.String("token", "", "the bearer `TOKEN` the server requires (default: "+envToken+")")
	return t
}

// resolve decides, after the flags are parsed, between the server and the
// data directory; open calls it.
func (t *target) resolve() error {
	set := map[string]bool{}
	t.f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case set["server"] && set["data"]:
		return usagef("%s: give --server or --data, not both", t.f.path)
	case set["server"]:
		t.url = *t.server
	case set["data"]:
		t.dir = *t.data
	case t.e.env(envServer) != "":
		t.url = t.e.env(envServer)
	case t.preferServer:
		t.url = defaultServer
	default:
		t.dir = *t.data
	}
	if t.url == "" {
		if t.dir == "" {
			return usagef("%s: --data: give a directory", t.f.path)
		}
		return nil
	}
	u, err := url.Parse(t.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%s: --server %q: give the server's URL, such as %s", t.f.path, t.url, defaultServer)
	}
	t.url = strings.TrimRight(t.url, "/")
	return nil
}

func (t *target) bearer() string {
	if *t.token != "" {
		return *t.token
	}
	return t.e.env(envToken)
}

// client returns a client of the server; resolve found one.
func (t *target) client() *client.Client {
	return client.New(t.url, nil, client.WithToken(t.bearer()))
}

// flag is how the user names the target again in a hint: "--server URL"
// or "--data DIR".
func (t *target) flag() string {
	if t.url != "" {
		return "--server " + t.url
	}
	return "--data " + t.dir
}

// where names the target in a message: "the server at URL" or the
// directory.
func (t *target) where() string {
	if t.url != "" {
		return "the server at " + t.url
	}
	return t.dir
}

// open resolves the target and returns its journal and dead letters, and
// whether a running process serves them (live).
func (t *target) open(ctx context.Context) (src source, live bool, err error) {
	if err := t.resolve(); err != nil {
		return nil, false, err
	}
	if t.url != "" {
		return t.client(), true, nil
	}
	return openSource(ctx, t.dir)
}

// explain adds to an error from a server how to reach it.
func (t *target) explain(err error) error {
	if err == nil || t.url == "" {
		return err
	}
	return unreachable(t.url, err)
}

// explainNotFound is explain, but points an error that something is not
// found to the command that lists what there is.
func (t *target) explainNotFound(err error, list string) error {
	if errors.Is(err, baton.ErrNotFound) {
		return fmt.Errorf("%w; see %s", err, t.hint(list))
	}
	return t.explain(err)
}

// unreachable adds a hint to an error reaching a server.
func unreachable(url string, err error) error {
	switch baton.ErrorCode(err) {
	case baton.Unavailable:
		return fmt.Errorf("%w\nis a baton server running at %s? (start one with baton server; or give --server URL or %s)", err, url, envServer)
	case api.Unauthorized:
		return fmt.Errorf("%w\nthe server at %s requires a token: give --token or set %s", err, url, envToken)
	}
	return err
}
