package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/backend/rabbitbus"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/flow"
)

var namespaceCommands = []subcommand{
	{"delete", "delete a namespace from the broker and the database", namespaceDelete},
}

func namespaceUsage(w io.Writer) {
	fmt.Fprint(w, `baton namespace: manage the namespaces of a broker and a database

A namespace (--namespace, BATON_NAMESPACE, default `+defaultNamespace+`) separates
installations sharing servers: it is the RabbitMQ exchange and the prefix of
its queues, the NATS stream, the PostgreSQL schema and the Redis key prefix.

Usage:
  baton namespace <subcommand> [flags] NAME

Subcommands:
`)
	for _, c := range namespaceCommands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "baton namespace <subcommand> --help" for its flags.

Examples:
  baton namespace delete shop --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0
  baton namespace delete shop --bus amqp://guest:guest@127.0.0.1:5672/ --store postgres://postgres@127.0.0.1:5432/test --yes
`)
}

func runNamespace(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, args, "namespace", namespaceCommands, namespaceUsage)
}

func namespaceDelete(ctx context.Context, e *env, args []string) error {
	f := newFlags("namespace delete", "delete a namespace from the broker and the database", "[flags] NAME", `
Deletes the namespace NAME from the broker and the database that --bus and
--store name (or BATON_BUS and BATON_STORE): its messages, dead letters,
journal, runs and schedules are gone for good. Stop the processes that use
it first. Without --yes it says what it would delete, deletes nothing and
exits 1.

What goes: on RabbitMQ, the exchange NAME and the queues NAME.GROUP (with
their .bindings, .delay.* and .dead queues) of every group the store's
journal, inbox or dead letters name, and of those given with --group (AMQP
cannot list queues: the queue of a group that never handled an event and is
not named is left, unbound); on NATS, the stream NAME in upper case, with
its consumers; on PostgreSQL, the schema NAME; on Redis, every key that
begins with NAME:.

The embedded backend keeps everything in its data directory: to delete it,
stop the process that holds it and remove the directory.`,
		"baton namespace delete shop --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0",
		"baton namespace delete shop --bus amqp://guest:guest@127.0.0.1:5672/ --store postgres://postgres@127.0.0.1:5432/test --yes",
		"BATON_BUS=nats://127.0.0.1:4222 BATON_STORE=redis://127.0.0.1:6379/0 baton namespace delete shop --yes")
	backends := f.backendFlags()
	yes := f.Bool("yes", false, "delete; without it, say what would be deleted")
	var groups groupList
	f.Var(&groups, "group", "also delete the RabbitMQ queues of the consumer group `NAME` (repeat for more)")
	args, err := f.parseArgs(e, args, 1, 1, "the namespace's NAME")
	if err != nil {
		return err
	}
	name := args[0]
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "namespace" })
	if set && backends.namespace != name {
		return usagef("namespace delete: --namespace %s and NAME %s differ: give NAME alone", backends.namespace, name)
	}
	backends.namespace = name
	if err := backends.fromEnv(e, f.path); err != nil {
		return err
	}
	if b, _, _ := pickBackends(backends.bus, backends.store); b == kindEmbedded {
		return fmt.Errorf("namespace delete: the embedded backend has no namespaces: it keeps everything in its data directory; to delete that, stop the process that holds it and remove the directory (give --bus and --store to delete a namespace from a broker and a database)")
	}
	ns, err := newNamespace(*backends)
	if err != nil {
		return err
	}
	found, err := ns.groups(ctx)
	if err != nil {
		return err
	}
	all := append(found, groups...)
	if !*yes {
		fmt.Fprintf(e.stdout, "namespace delete %s would delete:\n", name)
		for _, what := range ns.describe(all) {
			fmt.Fprintf(e.stdout, "  %s\n", what)
		}
		fmt.Fprintln(e.stderr, "baton: namespace delete: nothing deleted; run again with --yes to delete it")
		return errSilent
	}
	done, err := ns.delete(ctx, all)
	for _, d := range done {
		fmt.Fprintln(e.stdout, d)
	}
	return err
}

// groupList is a repeated --group.
type groupList []string

func (g *groupList) String() string { return strings.Join(*g, ",") }

func (g *groupList) Set(s string) error {
	if s == "" {
		return fmt.Errorf("give a group's name")
	}
	*g = append(*g, s)
	return nil
}

// namespace is one namespace on a broker and a database, named by
// backendConfig, to delete.
type namespace struct {
	c                    backendConfig
	busKind, storeKind   string
	pg                   pgstore.Config
	redis                redisstore.Config
	nats                 natsbus.Config
	rabbit               rabbitbus.Config
	busWhere, storeWhere string
}

func newNamespace(c backendConfig) (*namespace, error) {
	busKind, storeKind, err := pickBackends(c.bus, c.store)
	if err != nil {
		return nil, usagef("%v", err)
	}
	n := &namespace{c: c, busKind: busKind, storeKind: storeKind,
		busWhere: redact(c.bus), storeWhere: redact(c.store)}
	switch busKind {
	case kindNATS:
		n.nats = natsbus.Config{URL: c.bus, Namespace: c.namespace}
	case kindRabbitMQ:
		u := c.bus
		if rest, ok := strings.CutPrefix(u, "rabbitmq"); ok {
			u = "amqp" + rest // rabbitmq://... and rabbitmqs://...
		}
		u, _, _, err := backend.QueueTypes(u)
		if err != nil {
			return nil, usagef("--bus %s: %v", redact(c.bus), err)
		}
		n.rabbit = rabbitbus.Config{URL: u, Namespace: c.namespace}
	}
	switch storeKind {
	case kindPostgres:
		n.pg = pgstore.Config{URL: c.store, Schema: c.namespace}
	case kindRedis:
		n.redis = redisstore.Config{URL: c.store, Prefix: c.namespace + ":"}
	}
	return n, nil
}

// groups returns the consumer groups the namespace's store knows, and the
// coordinator's, whose queues a RabbitMQ bus holds; none on NATS, whose
// stream holds the groups' consumers.
func (n *namespace) groups(ctx context.Context) ([]string, error) {
	if n.busKind != kindRabbitMQ {
		return nil, nil
	}
	var groups []string
	var err error
	switch n.storeKind {
	case kindPostgres:
		groups, err = pgstore.Groups(ctx, n.pg)
	case kindRedis:
		groups, err = redisstore.Groups(ctx, n.redis)
	}
	if err != nil {
		return nil, fmt.Errorf("--store %s: find the groups of namespace %s: %w", n.storeWhere, n.c.namespace, err)
	}
	if !slices.Contains(groups, flow.DefaultGroup) {
		groups = append(groups, flow.DefaultGroup)
	}
	return groups, nil
}

// describe says what delete would delete.
func (n *namespace) describe(groups []string) []string {
	ns := n.c.namespace
	var out []string
	switch n.busKind {
	case kindRabbitMQ:
		out = append(out, fmt.Sprintf("RabbitMQ at %s: the exchange %s and the queues %s.GROUP (.bindings, .delay.*, .dead) of the groups %s, those that exist", n.busWhere, ns, ns, strings.Join(groups, ", ")))
	case kindNATS:
		out = append(out, fmt.Sprintf("NATS at %s: the stream %s, with its messages and consumers", n.busWhere, strings.ToUpper(ns)))
	}
	switch n.storeKind {
	case kindPostgres:
		out = append(out, fmt.Sprintf("PostgreSQL at %s: the schema %s, with its tables", n.storeWhere, ns))
	case kindRedis:
		out = append(out, fmt.Sprintf("Redis at %s: every key that begins with %s:", n.storeWhere, ns))
	}
	return out
}

// delete deletes the namespace, the bus first: the store knows its groups.
// It returns a line for each backend.
func (n *namespace) delete(ctx context.Context, groups []string) ([]string, error) {
	ns := n.c.namespace
	var done []string
	switch n.busKind {
	case kindRabbitMQ:
		deleted, err := rabbitbus.DeleteNamespace(ctx, n.rabbit, groups)
		if err != nil {
			return done, fmt.Errorf("--bus %s: %w", n.busWhere, err)
		}
		if len(deleted) == 0 {
			done = append(done, fmt.Sprintf("RabbitMQ: no exchange %s, and no queues of the groups %s", ns, strings.Join(groups, ", ")))
		} else {
			done = append(done, fmt.Sprintf("RabbitMQ: deleted %s", strings.Join(deleted, ", ")))
		}
	case kindNATS:
		deleted, err := natsbus.DeleteNamespace(ctx, n.nats)
		if err != nil {
			return done, fmt.Errorf("--bus %s: %w", n.busWhere, err)
		}
		done = append(done, fmt.Sprintf("NATS: %s stream %s", or(deleted, "deleted", "no"), strings.ToUpper(ns)))
	}
	switch n.storeKind {
	case kindPostgres:
		deleted, err := pgstore.DeleteNamespace(ctx, n.pg)
		if err != nil {
			return done, fmt.Errorf("--store %s: %w", n.storeWhere, err)
		}
		done = append(done, fmt.Sprintf("PostgreSQL: %s schema %s", or(deleted, "dropped", "no"), ns))
	case kindRedis:
		keys, err := redisstore.DeleteNamespace(ctx, n.redis)
		if err != nil {
			return done, fmt.Errorf("--store %s: %w", n.storeWhere, err)
		}
		done = append(done, fmt.Sprintf("Redis: deleted %d keys beginning with %s:", keys, ns))
	}
	return done, nil
}

func or(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
