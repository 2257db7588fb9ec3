package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// deleteWhenDone deletes the namespace with baton namespace delete when
// the test ends.
func deleteWhenDone(t *testing.T, backends []string) {
	t.Cleanup(func() {
		r := batonCmd(t, context.Background(), append([]string{"namespace", "delete", "--yes"}, backends...)...)
		if r.code != 0 {
			t.Errorf("cleanup: namespace delete: exit %d: %s", r.code, r.stderr)
		}
	})
}

// The demo run twice on one namespace: the second run deletes the first's
// state, says so in one line, and ends as the first did.
func TestDemoAgainOnANamespace(t *testing.T) {
	t.Parallel()
	for _, pair := range brokerPairs {
		t.Run(pair.name, func(t *testing.T) {
			t.Parallel()
			pair.need(t)
			ns := testNamespace()
			backends := pair.args(ns)
			deleteWhenDone(t, append([]string{ns}, backends...))
			const n, rate = 40, 0.3
			want, _ := expect(n, rate)
			args := append([]string{"demo", "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate)}, backends...)
			mustRun(t, args...)
			r := batonCmd(t, context.Background(), args...)
			if r.code != 0 {
				t.Fatalf("second demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if got := strings.Count(r.stderr, "namespace "+ns+" held an earlier demo run whose ledger is not here: deleted it"); got != 1 {
				t.Errorf("stderr says %d times that the earlier run was deleted:\n%s", got, r.stderr)
			}
			if gotN, got := parseDone(t, r.stdout); gotN != n || got != want {
				t.Errorf("second demo: %d orders, %+v; want %d, %+v", gotN, got, n, want)
			}
		})
	}
}

// baton namespace delete says what it would delete, and with --yes deletes
// it from the broker and the database.
func TestNamespaceDelete(t *testing.T) {
	t.Parallel()
	for _, pair := range brokerPairs {
		t.Run(pair.name, func(t *testing.T) {
			t.Parallel()
			pair.need(t)
			ns := testNamespace()
			backends := pair.args(ns)
			deleteWhenDone(t, append([]string{ns}, backends...))
			mustRun(t, append([]string{"demo", "--style", styleOrchestration, "--orders", "20", "--fail-rate", "0.3"}, backends...)...)

			del := append([]string{"namespace", "delete", ns}, backends[:4]...) // --bus, --store
			r := batonCmd(t, context.Background(), del...)
			if r.code != 1 || !strings.Contains(r.stdout, "would delete") || !strings.Contains(r.stderr, "run again with --yes") {
				t.Fatalf("without --yes: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "guest:guest") {
				t.Errorf("the output shows a password:\n%s%s", r.stdout, r.stderr)
			}
			mustRun(t, append([]string{"status", "o-000001"}, backends...)...) // still there

			out := mustRun(t, append(del, "--yes")...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			switch pair.name {
			case "rabbitmq+postgres":
				for _, q := range []string{ns + ".payment", ns + ".order", ns + ".baton.coordinator", ns + ".payment.bindings"} {
					if !strings.Contains(out, q) {
						t.Errorf("namespace delete does not say it deleted queue %s:\n%s", q, out)
					}
				}
				rabbitGone(t, ns, ns+".payment", ns+".baton.coordinator")
				schemaGone(t, ctx, ns)
			case "nats+redis":
				if !strings.Contains(out, "NATS: deleted stream "+strings.ToUpper(ns)) {
					t.Errorf("namespace delete:\n%s", out)
				}
				streamGone(t, ctx, strings.ToUpper(ns))
				keysGone(t, ctx, ns+":")
			}
		})
	}
}

// The embedded backend's namespace is its data directory: the command says
// so, and deletes nothing.
func TestNamespaceDeleteEmbedded(t *testing.T) {
	t.Parallel()
	r := batonCmd(t, context.Background(), "namespace", "delete", "baton", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr, "remove the directory") {
		t.Fatalf("exit %d, stderr %q; want 1 and how to delete a data directory", r.code, r.stderr)
	}
}

func rabbitGone(t *testing.T, exchange string, queues ...string) {
	t.Helper()
	conn, err := amqp.Dial(rabbitTestURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notFound := func(what string, declare func(*amqp.Channel) error) {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		var ae *amqp.Error
		if err := declare(ch); !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			t.Errorf("%s after namespace delete: passive declare says %v; want not found", what, err)
		}
	}
	for _, q := range queues {
		notFound("queue "+q, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			return err
		})
	}
	notFound("exchange "+exchange, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	})
}

func schemaGone(t *testing.T, ctx context.Context, schema string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, pgTestURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s after namespace delete: %d, %v; want none", schema, n, err)
	}
}

func streamGone(t *testing.T, ctx context.Context, stream string) {
	t.Helper()
	nc, err := nats.Connect(natsTestURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream %s after namespace delete: %v; want not found", stream, err)
	}
}

func keysGone(t *testing.T, ctx context.Context, prefix string) {
	t.Helper()
	opt, err := redis.ParseURL(redisTestURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys of %s after namespace delete: %d, %v; want none", prefix, len(keys), err)
	}
}
