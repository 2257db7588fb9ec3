package main

import (
	"context"
	"errors"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// The environment variables that pick the backends when the flags do not.
const (
	envBus       = backend.EnvBus
	envStore     = backend.EnvStore
	envNamespace = backend.EnvNamespace
)

// defaultNamespace is the NATS namespace, RabbitMQ exchange, PostgreSQL schema
// and Redis key prefix (with a ':') when --namespace is not given.
const defaultNamespace = backend.DefaultNamespace

// The kinds of backend a URL picks.
const (
	kindEmbedded = backend.Embedded
	kindNATS     = backend.NATS
	kindRabbitMQ = backend.RabbitMQ
	kindPostgres = backend.Postgres
	kindRedis    = backend.Redis
)

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
	cfg := backend.Config{Bus: c.bus, Store: c.store, Namespace: c.namespace}.
		Or(backend.Config{Bus: e.env(envBus), Store: e.env(envStore), Namespace: e.env(envNamespace)})
	c.bus, c.store, c.namespace = cfg.Bus, cfg.Store, cfg.Namespace
	if c.namespace == "" {
		c.namespace = defaultNamespace
	}
	if _, _, err := cfg.Kinds(); err != nil {
		return usagef("%s: %v", cmd, err)
	}
	return nil
}

// pickBackends says which backends the URLs name, by scheme: the embedded
// backend for both, or a broker and a database.
func pickBackends(busURL, storeURL string) (busKind, storeKind string, err error) {
	return backend.Config{Bus: busURL, Store: storeURL}.Kinds()
}

// redact shows a URL's scheme only.
func redact(u string) string { return backend.Redact(u) }

// openBackends opens the transport and the store that busURL and storeURL
// name (see backend.Open): the embedded backend in dataDir as both, or a
// broker and a database in namespace, which sweeps what ret says. close
// closes what was opened, the transport first.
func openBackends(ctx context.Context, busURL, storeURL, dataDir, namespace string, ret store.Retention) (t bus.Transport, s store.Store, close func() error, err error) {
	b, err := backend.Open(ctx, backend.Config{Bus: busURL, Store: storeURL, Data: dataDir, Namespace: namespace, Retention: ret})
	if err != nil {
		var coded *baton.Error
		if errors.As(err, &coded) && coded.Code == baton.Invalid && coded.Op == "" {
			return nil, nil, nil, usagef("%v", err)
		}
		return nil, nil, nil, err
	}
	return b.Transport, b.Store, b.Close, nil
}
