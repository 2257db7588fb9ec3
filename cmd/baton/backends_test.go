package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/batonhq/baton/backend/natsbus"
)

// The servers on this machine's loopback; the environment variables are the
// ones the backends' own tests read.
func serviceURL(env, def string) string {
	if u := os.Getenv(env); u != "" {
		return u
	}
	return def
}

func natsTestURL() string  { return serviceURL("BATON_NATS_URL", "nats://127.0.0.1:4222") }
func redisTestURL() string { return serviceURL("BATON_REDIS_URL", "redis://127.0.0.1:6379/0") }
func pgTestURL() string {
	return serviceURL("BATON_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// need fails the test in CI and skips it elsewhere when nothing listens at
// rawURL's host.
func need(t *testing.T, service, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s URL %q: %v", service, rawURL, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s: %v (DEVELOPERS.md says how to start it)", service, u.Host, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// testNamespace returns a namespace of the test's own: a NATS stream,
// PostgreSQL schema or Redis prefix no other run uses.
func testNamespace() string {
	return "bt" + strings.ToLower(rand.Text()[:12])
}

// cleanNATS deletes the namespace's stream when the test ends.
func cleanNATS(t *testing.T, ns string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := natsbus.Open(ctx, natsbus.Config{URL: natsTestURL(), Namespace: ns})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		stream := b.Stream()
		b.Close()
		nc, err := nats.Connect(natsTestURL())
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if err := js.DeleteStream(ctx, stream); err != nil {
			t.Errorf("cleanup: delete stream %s: %v", stream, err)
		}
	})
}

// cleanRedis deletes the keys of the namespace's prefix when the test ends.
func cleanRedis(t *testing.T, ns string) {
	t.Cleanup(func() {
		opt, err := redis.ParseURL(redisTestURL())
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var keys []string
		iter := rdb.Scan(ctx, 0, ns+":*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scan %s:*: %v", ns, err)
			return
		}
		for len(keys) > 0 {
			n := min(500, len(keys))
			if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("cleanup: delete keys of %s: %v", ns, err)
				return
			}
			keys = keys[n:]
		}
	})
}

// cleanPostgres drops the namespace's schema when the test ends.
func cleanPostgres(t *testing.T, ns string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgTestURL())
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{ns}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema %s: %v", ns, err)
		}
	})
}

// demoOn runs the demo with 300 orders, 30% of which meet a fault, on the
// given backends, and checks the done line's counts.
func demoOn(t *testing.T, style string, backendArgs ...string) {
	t.Helper()
	const n, rate = 300, 0.3
	want, _ := expect(n, rate)
	args := append([]string{"demo", "--style", style, "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate)}, backendArgs...)
	out := mustRun(t, args...)
	gotN, got := parseDone(t, out)
	if gotN != n || got != want {
		t.Fatalf("done line says %d orders, %+v; want %d, %+v\n%s", gotN, got, n, want, out)
	}
	t.Log(doneLine.FindString(out))
}

// The demo on NATS and Redis ends as it does on the embedded backend, in
// both styles.
func TestDemoOnNATSAndRedis(t *testing.T) {
	t.Parallel()
	for _, style := range []string{styleChoreography, styleOrchestration} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			need(t, "NATS", natsTestURL())
			need(t, "Redis", redisTestURL())
			ns := testNamespace()
			cleanNATS(t, ns)
			cleanRedis(t, ns)
			demoOn(t, style, "--bus", natsTestURL(), "--store", redisTestURL(), "--namespace", ns)
		})
	}
}

// The orchestrated demo on NATS and PostgreSQL, the coordinator relaying
// the store's outbox to the bus.
func TestDemoOnNATSAndPostgres(t *testing.T) {
	t.Parallel()
	need(t, "NATS", natsTestURL())
	need(t, "PostgreSQL", pgTestURL())
	ns := testNamespace()
	cleanNATS(t, ns)
	cleanPostgres(t, ns)
	demoOn(t, styleOrchestration, "--bus", natsTestURL(), "--store", pgTestURL(), "--namespace", ns)
}

// Mistakes in --bus, --store and --namespace, or in the environment, are
// usage errors of demo and server; the flags win over the environment.
func TestBackendUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		env    map[string]string
		stderr string
	}{
		{[]string{"demo", "--bus", "kafka://127.0.0.1:9092"}, nil, "demo: --bus kafka://…: unknown kind of bus"},
		{[]string{"server", "--store", "mysql://127.0.0.1/db"}, nil, "server: --store mysql://…: unknown kind of store"},
		{[]string{"demo", "--bus", "nats://127.0.0.1:4222"}, nil, "demo: --bus nats://… needs --store postgres://… or redis://…: the embedded backend can only be both"},
		{[]string{"server", "--bus", "rabbitmq://guest:guest@127.0.0.1:5672/"}, nil, "server: --bus rabbitmq://… needs --store"},
		{[]string{"demo"}, map[string]string{envBus: "nats://127.0.0.1:4222"}, "demo: --bus nats://… needs --store"},
		{[]string{"demo", "--store", "redis://127.0.0.1:6379/0"}, nil, "demo: --store redis://… needs --bus nats://… or amqp://…: the embedded backend can only be both"},
		{[]string{"demo", "--bus", "kafka://x"}, map[string]string{envBus: "nats://127.0.0.1:4222", envStore: "redis://127.0.0.1:6379/0"}, "unknown kind of bus"},
		{[]string{"demo", "--namespace", "a.b"}, nil, `demo: --namespace "a.b": want letters, digits, '-' and '_' only`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut syncBuffer
			e := &env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return tc.env[k] }}
			if code := run(context.Background(), e, tc.args); code != 2 || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tc.stderr)
			}
		})
	}
}

// --bus embedded given on the command line wins over BATON_BUS.
func TestBackendFlagsWinOverEnvironment(t *testing.T) {
	t.Parallel()
	var out, errOut syncBuffer
	e := &env{stdout: &out, stderr: &errOut, getenv: func(k string) string {
		return map[string]string{envBus: "kafka://nowhere", envStore: "mysql://nowhere"}[k]
	}}
	args := []string{"demo", "--orders", "5", "--bus", "embedded", "--store", "embedded", "--data", t.TempDir()}
	if code := run(context.Background(), e, args); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if n, _ := parseDone(t, out.String()); n != 5 {
		t.Fatalf("done line says %d orders, want 5", n)
	}
}
