package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// The environment variables that pick the backends when the flags do not.
const (
	envBus       = "BATON_BUS"
	envStore     = "BATON_STORE"
	envNamespace = "BATON_NAMESPACE"
)

// defaultNamespace is the NATS namespace, RabbitMQ exchange, PostgreSQL schema
// and Redis key prefix (with a ':') when --namespace is not given.
const defaultNamespace = "baton"

// backendConfig is what --bus, --store and --namespace set.
type backendConfig struct {
	bus, store, namespace string
}

// backendFlags adds --bus, --store and --namespace to a command.
func (f *flags) backendFlags() *backendConfig {
	var c backendConfig
	f.StringVar(&c.bus, "bus", "", "the transport: `URL` embedded, nats://HOST:PORT, amqp://USER:PASS@HOST:PORT/ or rabbitmq://..., whose groups get classic lazy queues unless ?queue_type=quorum (every group) or ?queue_type.GROUP=quorum (one) says otherwise (default: "+envBus+", else embedded, in --data)")
	f.StringVar(&c.store, "store", "", "the store: `URL` embedded, postgres://... or redis://... (default: "+envStore+", else embedded, which needs the embedded bus)")
	f.StringVar(&c.namespace, "namespace", "", "the NATS stream, RabbitMQ exchange, PostgreSQL schema and Redis key prefix: `NAME` (default: "+envNamespace+", else "+defaultNamespace+")")
	return &c
}

// fromEnv fills what the flags left empty from the environment, then
// checks the choice: flags win.
func (c *backendConfig) fromEnv(e *env, cmd string) error {
	if c.bus == "" {
		c.bus = e.env(envBus)
	}
	if c.store == "" {
		c.store = e.env(envStore)
	}
	if c.namespace == "" {
		c.namespace = e.env(envNamespace)
	}
	if c.namespace == "" {
		c.namespace = defaultNamespace
	}
	for _, r := range c.namespace {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return usagef("%s: --namespace %q: want letters, digits, '-' and '_' only", cmd, c.namespace)
		}
	}
	_, _, err := pickBackends(c.bus, c.store)
	if err != nil {
		return usagef("%s: %v", cmd, err)
	}
	return nil
}

// The kinds of backend a URL picks.
const (
	kindEmbedded = "embedded"
	kindNATS     = "nats"
	kindRabbitMQ = "rabbitmq"
	kindPostgres = "postgres"
	kindRedis    = "redis"
)

// scheme returns what comes before "://" in u, lower case ("" when u has no
// scheme).
func scheme(u string) string {
	s, _, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(s)
}

// pickBackends says which backends the URLs name, by scheme: the embedded
// backend for both, or a broker and a database. Messages show the scheme
// only: the URLs may hold passwords.
func pickBackends(busURL, storeURL string) (busKind, storeKind string, err error) {
	switch s := scheme(busURL); {
	case busURL == "" || busURL == kindEmbedded:
		busKind = kindEmbedded
	case s == "nats" || s == "tls":
		busKind = kindNATS
	case s == "amqp" || s == "amqps" || s == "rabbitmq" || s == "rabbitmqs":
		busKind = kindRabbitMQ
	default:
		return "", "", fmt.Errorf("--bus %s: unknown kind of bus; give embedded, nats://..., amqp://... or rabbitmq://...", redact(busURL))
	}
	switch s := scheme(storeURL); {
	case storeURL == "" || storeURL == kindEmbedded:
		if busKind != kindEmbedded {
			return "", "", fmt.Errorf("--bus %s://… needs --store postgres://… or redis://…: the embedded backend can only be both", scheme(busURL))
		}
		storeKind = kindEmbedded
	case s == "postgres" || s == "postgresql":
		storeKind = kindPostgres
	case s == "redis" || s == "rediss":
		storeKind = kindRedis
	default:
		return "", "", fmt.Errorf("--store %s: unknown kind of store; give embedded, postgres://..., postgresql://... or redis://...", redact(storeURL))
	}
	if busKind == kindEmbedded && storeKind != kindEmbedded {
		// The embedded bus commits what handling a delivery changes
		// (inbox, journal, dead letters) to its own store: another store
		// would not see it.
		return "", "", fmt.Errorf("--store %s://… needs --bus nats://… or amqp://…: the embedded backend can only be both", scheme(storeURL))
	}
	return busKind, storeKind, nil
}

// queueTypes takes the queue types out of a RabbitMQ URL's query:
// queue_type=TYPE for every group, queue_type.GROUP=TYPE for one.
func queueTypes(raw string) (rest, def string, groups map[string]string, err error) {
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

// redact shows a URL's scheme only, or the whole argument when it has none
// (then it holds no password worth hiding).
func redact(u string) string {
	if s := scheme(u); s != "" {
		return s + "://…"
	}
	return fmt.Sprintf("%q", u)
}

// openBackends opens the transport and the store that busURL and storeURL
// name (see pickBackends): the embedded backend in dataDir as both, or a
// broker and a database. namespace separates installations sharing a server: it is the
// NATS namespace, the RabbitMQ namespace, the PostgreSQL schema and the Redis
// key prefix (followed by ':'). close closes what was opened, the transport
// first.
func openBackends(ctx context.Context, busURL, storeURL, dataDir, namespace string) (t bus.Transport, s store.Store, close func() error, err error) {
	busKind, storeKind, err := pickBackends(busURL, storeURL)
	if err != nil {
		return nil, nil, nil, usagef("%v", err)
	}
	if namespace == "" {
		namespace = defaultNamespace
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	var emb *embedded.Backend
	if busKind == kindEmbedded || storeKind == kindEmbedded {
		if emb, err = embedded.Open(embedded.Config{Dir: dataDir}); err != nil {
			return nil, nil, nil, err
		}
		closers = append(closers, emb.Close)
	}
	switch busKind {
	case kindEmbedded:
		t = emb
	case kindNATS:
		b, err := natsbus.Open(ctx, natsbus.Config{URL: busURL, Namespace: namespace})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--bus %s: %w", redact(busURL), err)
		}
		closers = append([]func() error{b.Close}, closers...)
		t = b
	case kindRabbitMQ:
		u := busURL
		if rest, ok := strings.CutPrefix(u, "rabbitmq"); ok && scheme(u) != "" {
			u = "amqp" + rest // rabbitmq://... and rabbitmqs://...
		}
		u, def, types, err := queueTypes(u)
		if err != nil {
			return nil, nil, nil, usagef("--bus %s: %v", redact(busURL), err)
		}
		b, err := rabbitbus.Open(ctx, rabbitbus.Config{URL: u, Namespace: namespace, QueueType: def, QueueTypes: types})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--bus %s: %w", redact(busURL), err)
		}
		closers = append([]func() error{b.Close}, closers...)
		t = b
	}
	switch storeKind {
	case kindEmbedded:
		s = emb
	case kindPostgres:
		st, err := pgstore.Open(ctx, pgstore.Config{URL: storeURL, Schema: namespace})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--store %s: %w", redact(storeURL), err)
		}
		closers = append(closers, st.Close)
		s = st
	case kindRedis:
		st, err := redisstore.Open(ctx, redisstore.Config{URL: storeURL, Prefix: namespace + ":"})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--store %s: %w", redact(storeURL), err)
		}
		closers = append(closers, st.Close)
		s = st
	}
	return t, s, closeAll, nil
}
