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
	envTokens        = "BATON_TOKENS"
	envWebhookSecret = "BATON_WEBHOOK_SECRET"
)

// target is where a command finds Baton: the API of a baton server
// (--server URL), a data directory (--data DIR), opened directly or
// reached through the control socket of the process that holds it, or a
// broker and a database (--bus URL --store URL --namespace NAME), opened
// directly.
type target struct {
	f            *flags
	e            *env
	server       *string
	token        *string
	data         *string
	backends     *backendConfig
	preferServer bool

	// Resolved by resolve: the server's API, the data directory, or the
	// broker and the database (brokers).
	url     string
	dir     string
	brokers bool
	given   []string // --bus, --store and --namespace as given on the command line

	resolved bool
}

// targetFlags adds --server, --token, --data, --bus, --store and
// --namespace. When none of --server, --data, --bus and --store is given,
// BATON_SERVER picks the server, else BATON_BUS and BATON_STORE the broker
// and the database; with none of them, preferServer says which is used:
// the server at defaultServer, or the data directory baton-data.
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
	t.backends = f.backendFlags()
	return t
}

// resolve decides, after the flags are parsed, between the server, the
// data directory and the broker and database; open calls it.
func (t *target) resolve() error {
	if t.resolved {
		return nil
	}
	t.resolved = true
	set := map[string]bool{}
	t.f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	backends := set["bus"] || set["store"]
	switch {
	case set["server"] && set["data"]:
		return usagef("%s: give --server or --data, not both", t.f.path)
	case set["server"] && backends:
		return usagef("%s: give --server or --bus and --store, not both", t.f.path)
	case set["server"]:
		t.url = *t.server
	case backends:
		if err := t.useBackends(set); err != nil {
			return err
		}
	case set["data"]:
		t.dir = *t.data
	case t.e.env(envServer) != "":
		t.url = t.e.env(envServer)
	case t.e.env(envBus) != "" || t.e.env(envStore) != "":
		if err := t.useBackends(set); err != nil {
			return err
		}
	case t.preferServer:
		t.url = defaultServer
	default:
		t.dir = *t.data
	}
	if set["namespace"] && !t.brokers {
		return usagef("%s: --namespace goes with --bus and --store (or %s and %s)", t.f.path, envBus, envStore)
	}
	if t.brokers {
		return nil
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

// useBackends completes --bus, --store and --namespace from the
// environment. The embedded backend as both is the data directory.
func (t *target) useBackends(set map[string]bool) error {
	if err := t.backends.fromEnv(t.e, t.f.path); err != nil {
		return err
	}
	if b, _, _ := pickBackends(t.backends.bus, t.backends.store); b == kindEmbedded {
		if *t.data == "" {
			return usagef("%s: --bus embedded: give the data directory with --data DIR", t.f.path)
		}
		t.dir = *t.data
		return nil
	}
	if set["data"] {
		return usagef("%s: --data is the embedded backend's directory; with --bus %s and --store %s give no --data", t.f.path, redact(t.backends.bus), redact(t.backends.store))
	}
	t.brokers = true
	for _, name := range []string{"bus", "store", "namespace"} {
		if set[name] {
			t.given = append(t.given, "--"+name, quoteArg(hidePassword(t.f.Lookup(name).Value.String())))
		}
	}
	return nil
}

// hidePassword shows a URL with its password, if any, as xxxxx.
func hidePassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	return u.Redacted()
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

// flag is how the user names the target again in a hint: "--server URL",
// "--data DIR", or the --bus, --store and --namespace given on the command
// line (a password shown as xxxxx), none when they came from the
// environment.
func (t *target) flag() string {
	switch {
	case t.brokers:
		return strings.Join(t.given, " ")
	case t.url != "":
		return "--server " + t.url
	}
	return "--data " + t.dir
}

// where names the target in a message: "the server at URL", the
// directory, or "namespace NAME (nats://… and redis://…)".
func (t *target) where() string {
	switch {
	case t.brokers:
		return fmt.Sprintf("namespace %s (%s and %s)", t.backends.namespace, redact(t.backends.bus), redact(t.backends.store))
	case t.url != "":
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
	switch {
	case t.brokers:
		src, err := openDirect(ctx, t.backends)
		return src, false, err
	case t.url != "":
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
