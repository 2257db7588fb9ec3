// Package backend opens Baton's transport and store from URLs, as the baton
// command takes them with --bus and --store (or BATON_BUS and BATON_STORE),
// so that a team's own program picks its backends the same way:
//
//	b, err := backend.Open(ctx, backend.FromEnv(os.Getenv))
//
// The URL's scheme picks the backend: embedded (the default, in a data
// directory), nats:// or amqp:// (rabbitmq://) for the bus, postgres:// or
// redis:// for the store. The embedded backend is both or neither.
//
// No error or log line of this package shows a password: a URL is shown by
// its scheme, and what a driver says is scrubbed of the URL's credentials.
package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// The environment variables FromEnv reads.
const (
	EnvBus       = "BATON_BUS"
	EnvStore     = "BATON_STORE"
	EnvNamespace = "BATON_NAMESPACE"
	EnvData      = "BATON_DATA"
)

// Defaults of a Config left empty.
const (
	// DefaultNamespace is the NATS stream's namespace, the RabbitMQ
	// exchange, the PostgreSQL schema and the Redis key prefix (with a
	// ':').
	DefaultNamespace = "baton"
	// DefaultData is the embedded backend's data directory.
	DefaultData = "baton-data"
)

// The kinds of backend a URL picks.
const (
	Embedded = "embedded"
	NATS     = "nats"
	RabbitMQ = "rabbitmq"
	Postgres = "postgres"
	Redis    = "redis"
)

// Config names the backends. The zero value is the embedded backend in
// DefaultData.
type Config struct {
	// Bus is the transport's URL: "" or "embedded", nats://HOST:PORT,
	// amqp://USER:PASS@HOST:PORT/ or rabbitmq://... A RabbitMQ URL may
	// say queue_type=quorum (every group) or queue_type.GROUP=quorum (one)
	// in its query; groups get classic lazy queues otherwise.
	Bus string
	// Store is the store's URL: "" or "embedded", postgres://... or
	// redis://...
	Store string
	// Namespace separates installations that share a server (default
	// DefaultNamespace): letters, digits, '-' and '_'.
	Namespace string
	// Data is the embedded backend's directory (default DefaultData),
	// created when missing.
	Data string
	// Retention is the store's (zero: store.Retention's defaults): what
	// its background sweeps remove.
	Retention store.Retention
}

// FromEnv returns the Config that BATON_BUS, BATON_STORE, BATON_NAMESPACE
// and BATON_DATA name, read with getenv (os.Getenv, usually).
func FromEnv(getenv func(string) string) Config {
	return Config{Bus: getenv(EnvBus), Store: getenv(EnvStore), Namespace: getenv(EnvNamespace), Data: getenv(EnvData)}
}

// Or returns c with what it leaves empty taken from d: flags first, then
// the environment, as in cfg.Or(backend.FromEnv(os.Getenv)).
func (c Config) Or(d Config) Config {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	ret := c.Retention
	if ret == (store.Retention{}) {
		ret = d.Retention
	}
	return Config{Bus: pick(c.Bus, d.Bus), Store: pick(c.Store, d.Store), Namespace: pick(c.Namespace, d.Namespace), Data: pick(c.Data, d.Data), Retention: ret}
}

// Kinds checks c and says which backends it names: Embedded for both, or
// NATS or RabbitMQ with Postgres or Redis. Its errors are coded Invalid and
// name the flag (--bus, --store, --namespace) that is wrong.
func (c Config) Kinds() (busKind, storeKind string, err error) {
	for _, r := range c.namespace() {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "", "", invalid("--namespace %q: want letters, digits, '-' and '_' only", c.Namespace)
		}
	}
	switch s := scheme(c.Bus); {
	case c.Bus == "" || c.Bus == Embedded:
		busKind = Embedded
	case s == "nats" || s == "tls":
		busKind = NATS
	case s == "amqp" || s == "amqps" || s == "rabbitmq" || s == "rabbitmqs":
		busKind = RabbitMQ
	default:
		return "", "", invalid("--bus %s: unknown kind of bus; give embedded, nats://..., amqp://... or rabbitmq://...", Redact(c.Bus))
	}
	switch s := scheme(c.Store); {
	case c.Store == "" || c.Store == Embedded:
		if busKind != Embedded {
			return "", "", invalid("--bus %s://… needs --store postgres://… or redis://…: the embedded backend can only be both", scheme(c.Bus))
		}
		storeKind = Embedded
	case s == "postgres" || s == "postgresql":
		storeKind = Postgres
	case s == "redis" || s == "rediss":
		storeKind = Redis
	default:
		return "", "", invalid("--store %s: unknown kind of store; give embedded, postgres://..., postgresql://... or redis://...", Redact(c.Store))
	}
	if busKind == Embedded && storeKind != Embedded {
		// The embedded bus commits what handling a delivery changes
		// (inbox, journal, dead letters) to its own store: another store
		// would not see it.
		return "", "", invalid("--store %s://… needs --bus nats://… or amqp://…: the embedded backend can only be both", scheme(c.Store))
	}
	return busKind, storeKind, nil
}

func invalid(format string, args ...any) error {
	return &baton.Error{Code: baton.Invalid, Err: fmt.Errorf(format, args...)}
}

func (c Config) namespace() string {
	if c.Namespace == "" {
		return DefaultNamespace
	}
	return c.Namespace
}

func (c Config) data() string {
	if c.Data == "" {
		return DefaultData
	}
	return c.Data
}

// Backends are an open transport and store.
type Backends struct {
	Transport bus.Transport
	Store     store.Store
	// BusKind and StoreKind are what Config.Kinds said.
	BusKind, StoreKind string
	Namespace          string
	// Data is the embedded backend's directory; "" on the others.
	Data string

	closers []func() error
}

// Open opens the backends c names. The embedded backend's directory is
// created when missing; only one process may hold it at a time (the error
// is then coded Unavailable).
func Open(ctx context.Context, c Config) (_ *Backends, err error) {
	busKind, storeKind, err := c.Kinds()
	if err != nil {
		return nil, err
	}
	b := &Backends{BusKind: busKind, StoreKind: storeKind, Namespace: c.namespace()}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	ns := b.Namespace
	if busKind == Embedded {
		b.Data = c.data()
		emb, err := embedded.Open(embedded.Config{Dir: b.Data, Retention: c.Retention})
		if err != nil {
			if baton.ErrorCode(err) == baton.Unavailable {
				return nil, fmt.Errorf("data directory %s is in use by another process (only one may open it; stop it, or reach it through its control socket): %w", b.Data, err)
			}
			return nil, fmt.Errorf("data directory %s: %w", b.Data, err)
		}
		b.closers = append(b.closers, emb.Close)
		b.Transport, b.Store = emb, emb
		return b, nil
	}
	switch busKind {
	case NATS:
		nb, err := natsbus.Open(ctx, natsbus.Config{URL: c.Bus, Namespace: ns})
		if err != nil {
			return nil, scrub(fmt.Errorf("--bus %s: %w", Redact(c.Bus), err), c.Bus)
		}
		b.closers = append(b.closers, nb.Close)
		b.Transport = nb
	case RabbitMQ:
		u := c.Bus
		if rest, ok := strings.CutPrefix(u, "rabbitmq"); ok {
			u = "amqp" + rest // rabbitmq://... and rabbitmqs://...
		}
		u, def, types, err := QueueTypes(u)
		if err != nil {
			return nil, invalid("--bus %s: %v", Redact(c.Bus), err)
		}
		rb, err := rabbitbus.Open(ctx, rabbitbus.Config{URL: u, Namespace: ns, QueueType: def, QueueTypes: types})
		if err != nil {
			return nil, scrub(fmt.Errorf("--bus %s: %w", Redact(c.Bus), err), c.Bus)
		}
		b.closers = append(b.closers, rb.Close)
		b.Transport = rb
	}
	switch storeKind {
	case Postgres:
		st, err := pgstore.Open(ctx, pgstore.Config{URL: c.Store, Schema: ns, Retention: c.Retention})
		if err != nil {
			return nil, scrub(fmt.Errorf("--store %s: %w", Redact(c.Store), err), c.Store)
		}
		b.closers = append(b.closers, st.Close)
		b.Store = st
	case Redis:
		st, err := redisstore.Open(ctx, redisstore.Config{URL: c.Store, Prefix: ns + ":", Retention: c.Retention})
		if err != nil {
			return nil, scrub(fmt.Errorf("--store %s: %w", Redact(c.Store), err), c.Store)
		}
		b.closers = append(b.closers, st.Close)
		b.Store = st
	}
	return b, nil
}

// Close closes the transport, then the store.
func (b *Backends) Close() error {
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c())
	}
	b.closers = nil
	return errors.Join(errs...)
}

// String names the backends without their URLs: "embedded in DIR", or "bus
// rabbitmq, store postgres, namespace NAME".
func (b *Backends) String() string {
	if b.BusKind == Embedded {
		return "embedded in " + b.Data
	}
	return fmt.Sprintf("bus %s, store %s, namespace %s", b.BusKind, b.StoreKind, b.Namespace)
}

// scheme returns what comes before "://" in u, lower case ("" when u has no
// scheme).
func scheme(u string) string {
	s, _, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(s)
}

// Redact shows a URL by its scheme only ("amqp://…"), or the whole argument
// quoted when it has none (then it holds no password worth hiding).
func Redact(u string) string {
	if s := scheme(u); s != "" {
		return s + "://…"
	}
	return fmt.Sprintf("%q", u)
}

// QueueTypes takes the queue types out of a RabbitMQ URL's query:
// queue_type=TYPE for every group, queue_type.GROUP=TYPE for one.
func QueueTypes(raw string) (rest, def string, groups map[string]string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", nil, errors.New("not a URL")
	}
	q := u.Query()
	for key, values := range q {
		name, ok := strings.CutPrefix(key, "queue_type")
		if !ok {
			continue
		}
		typ := values[len(values)-1]
		switch group, isGroup := strings.CutPrefix(name, "."); {
		case name == "":
			def = typ
		case isGroup && group != "":
			if groups == nil {
				groups = map[string]string{}
			}
			groups[group] = typ
		default:
			return "", "", nil, fmt.Errorf("query parameter %s: want queue_type or queue_type.GROUP", key)
		}
		q.Del(key)
	}
	u.RawQuery = q.Encode()
	return u.String(), def, groups, nil
}

// scrub returns err with every secret of rawURL taken out of its message:
// the URL itself, its user information and its password, even when the URL
// does not parse (drivers quote what they were given). errors.Is and As
// still see the cause.
func scrub(err error, rawURL string) error {
	msg := err.Error()
	clean := strings.ReplaceAll(msg, rawURL, Redact(rawURL))
	// A NATS URL may list several servers, each with its credentials.
	for _, one := range strings.Split(rawURL, ",") {
		for _, s := range secrets(one) {
			if len(s) >= 3 {
				clean = strings.ReplaceAll(clean, s, "xxxxx")
			}
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, cause: err}
}

// secrets lists what a URL holds that must not be shown: its user
// information and password (as written and unescaped), and a password in
// its query.
func secrets(rawURL string) []string {
	var out []string
	if _, rest, ok := strings.Cut(rawURL, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			userinfo := rest[:at]
			out = append(out, userinfo)
			if _, pass, ok := strings.Cut(userinfo, ":"); ok {
				out = append(out, pass)
				if p, err := url.PathUnescape(pass); err == nil {
					out = append(out, p)
				}
			}
		}
	}
	if u, err := url.Parse(rawURL); err == nil {
		for _, k := range []string{"password", "pass"} {
			if p := u.Query().Get(k); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

type scrubbed struct {
	msg   string
	cause error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.cause }
