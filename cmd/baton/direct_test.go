package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/batonhq/baton/store"
)

// brokerPairs are the broker deployments the direct commands are tested on:
// each needs two servers, and cleans its namespace up when the test ends.
var brokerPairs = []struct {
	name  string
	need  func(t *testing.T)
	args  func(ns string) []string
	clean func(t *testing.T, ns string)
}{
	{"rabbitmq+postgres",
		func(t *testing.T) { need(t, "RabbitMQ", rabbitTestURL()); need(t, "PostgreSQL", pgTestURL()) },
		func(ns string) []string {
			return []string{"--bus", rabbitTestURL(), "--store", pgTestURL(), "--namespace", ns}
		},
		func(t *testing.T, ns string) { cleanRabbitMQ(t, ns); cleanPostgres(t, ns) }},
	{"nats+redis",
		func(t *testing.T) { need(t, "NATS", natsTestURL()); need(t, "Redis", redisTestURL()) },
		func(ns string) []string {
			return []string{"--bus", natsTestURL(), "--store", redisTestURL(), "--namespace", ns}
		},
		func(t *testing.T, ns string) { cleanNATS(t, ns); cleanRedis(t, ns) }},
}

// status, dlq list|show|replay|drop, tail and run list|get work on a broker
// and a database directly, after a demo on them ended.
func TestCommandsOnBrokers(t *testing.T) {
	t.Parallel()
	for _, pair := range brokerPairs {
		t.Run(pair.name, func(t *testing.T) {
			t.Parallel()
			pair.need(t)
			ns := testNamespace()
			pair.clean(t, ns)
			backends := pair.args(ns)
			with := func(args ...string) []string { return append(args, backends...) }

			const n, rate = 60, 0.3
			want, deadIDs := expect(n, rate)
			if len(deadIDs) < 2 {
				t.Fatalf("want two dead-lettered orders among %d at rate %v, got %v", n, rate, deadIDs)
			}
			mustRun(t, with("demo", "--style", styleOrchestration, "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate))...)

			out := mustRun(t, with("status", "o-000001")...)
			if !strings.Contains(out, "o-000001: ") || !strings.Contains(out, "order.placed.v1") || !strings.Contains(out, "verdict: completed") {
				t.Errorf("status o-000001:\n%s", out)
			}
			// The step commands of one run tell each other apart, and
			// --wide shows them whole.
			if !strings.Contains(out, "/charge#1") || !strings.Contains(out, "/reserve#1") {
				t.Errorf("status o-000001 does not show the steps in the ids:\n%s", out)
			}
			var h []store.Entry
			if err := json.Unmarshal([]byte(mustRun(t, with("status", "--json", "o-000001")...)), &h); err != nil {
				t.Fatal(err)
			}
			if wide := mustRun(t, with("status", "--wide", "o-000001")...); !strings.Contains(wide, h[0].EventID) {
				t.Errorf("status --wide does not show %s:\n%s", h[0].EventID, wide)
			}

			var dead []store.DeadLetter
			if err := json.Unmarshal([]byte(mustRun(t, with("dlq", "list", "--json")...)), &dead); err != nil {
				t.Fatal(err)
			}
			if len(dead) != want.dead {
				t.Fatalf("dlq list: %d dead letters, want %d", len(dead), want.dead)
			}
			list := mustRun(t, with("dlq", "list")...)
			for _, id := range deadIDs {
				if !strings.Contains(list, id) {
					t.Errorf("dlq list does not show %s:\n%s", id, list)
				}
			}
			show := mustRun(t, with("dlq", "show", dead[0].ID)...)
			if !strings.Contains(show, "correlation id:  "+dead[0].CorrelationID) || !strings.Contains(show, "body (") {
				t.Errorf("dlq show %s:\n%s", dead[0].ID, show)
			}

			// The dead letters are steps of runs that failed: a replay is
			// refused, says what to do, and keeps the dead letter.
			replay := mustRun(t, with("dlq", "replay", dead[0].ID)...)
			if !strings.Contains(replay, "refused") || !strings.Contains(replay, "baton dlq drop") {
				t.Errorf("dlq replay of a failed run's step:\n%s", replay)
			}
			if strings.Contains(replay, "--data") || strings.Contains(replay, "--keep") {
				t.Errorf("dlq replay on brokers suggests the data directory:\n%s", replay)
			}
			drop := mustRun(t, with("dlq", "drop", dead[1].ID)...)
			if !strings.Contains(drop, "dropped dead letter "+dead[1].ID) {
				t.Errorf("dlq drop:\n%s", drop)
			}
			refused := dead[0].CorrelationID
			if err := json.Unmarshal([]byte(mustRun(t, with("dlq", "list", "--json")...)), &dead); err != nil {
				t.Fatal(err)
			}
			if len(dead) != want.dead-1 {
				t.Errorf("after a refused replay and a drop, %d dead letters; want %d", len(dead), want.dead-1)
			}
			if out := mustRun(t, with("status", refused)...); !strings.Contains(out, "verdict: failed") {
				t.Errorf("status %s does not say the run failed:\n%s", refused, out)
			}

			tail := tailUntil(t, "o-000002", with("tail", "--from-start")...)
			if !strings.Contains(tail, "o-000000") || !strings.Contains(tail, "order.placed.v1") {
				t.Errorf("tail --from-start:\n%s", tail)
			}

			runs := mustRun(t, with("run", "list", "--key", "o-000001")...)
			if !strings.Contains(runs, "order v1") || !strings.Contains(runs, "completed") {
				t.Fatalf("run list --key o-000001:\n%s", runs)
			}
			var listed []store.Run
			if err := json.Unmarshal([]byte(mustRun(t, with("run", "list", "--json", "--limit", "2")...)), &listed); err != nil {
				t.Fatal(err)
			}
			if len(listed) != 2 {
				t.Fatalf("run list --limit 2: %d runs", len(listed))
			}
			if more := mustRun(t, with("run", "list", "--limit", "2")...); !strings.Contains(more, "more: baton run list --bus ") || !strings.Contains(more, "--namespace "+ns) {
				t.Errorf("run list's next page does not name the backends:\n%s", more)
			}
			got := mustRun(t, with("run", "get", listed[0].ID)...)
			if !strings.Contains(got, "run:      "+listed[0].ID) || !strings.Contains(got, "key:      "+listed[0].Key) {
				t.Errorf("run get %s:\n%s", listed[0].ID, got)
			}

			// Starting a run needs a server: the message says so, and
			// names no data directory.
			r := batonCmd(t, context.Background(), with("run", "start", "order", "o-999999")...)
			if r.code != 1 || !strings.Contains(r.stderr, "only a running baton server can start runs") || strings.Contains(r.stderr, "--data") {
				t.Errorf("run start on brokers: exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
}

// tailUntil runs baton tail until its output shows until, then stops it.
func tailUntil(t *testing.T, until string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, &env{stdout: &out, stderr: &errOut}, args) }()
	waitFor(t, "tail to show "+until, func() bool { return strings.Contains(out.String(), until) }, done, &errOut)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "reading the store") {
		t.Errorf("tail's stderr: %q", errOut.String())
	}
	return out.String()
}

// The backends are picked from the environment as the flags would; --server
// and --bus together are a mistake.
func TestBrokerTargetUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		env    map[string]string
		stderr string
	}{
		{[]string{"status", "--server", "http://127.0.0.1:7070", "--bus", "nats://127.0.0.1:4222", "o-1"}, nil, "status: give --server or --bus and --store, not both"},
		{[]string{"dlq", "list", "--bus", "nats://127.0.0.1:4222"}, nil, "dlq list: --bus nats://… needs --store postgres://… or redis://…"},
		{[]string{"tail", "--namespace", "x"}, nil, "tail: --namespace goes with --bus and --store"},
		{[]string{"run", "list", "--data", "d", "--bus", "nats://h:4222", "--store", "redis://u:secret@h:6379/0"}, nil, "run list: --data is the embedded backend's directory; with --bus nats://… and --store redis://… give no --data"},
		{[]string{"status", "o-1"}, map[string]string{envBus: "nats://127.0.0.1:4222"}, "status: --bus nats://… needs --store"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut syncBuffer
			e := &env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return tc.env[k] }}
			code := run(context.Background(), e, tc.args)
			if code != 2 || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tc.stderr)
			}
			if strings.Contains(errOut.String(), "secret") {
				t.Errorf("stderr %q shows the password", errOut.String())
			}
		})
	}
}

func TestShortIDTellsStepsAndRunsApart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ id, want string }{
		{"c147dda8cf99497e0efec95cc3ad7bc9", "c147dda8"},
		{"place-o-000017", "place-o-000017"},
		{"r-01M8VMQ46V9QP9DW1SDYVVM6HJ/charge#1", "…VVM6HJ/charge#1"},
		{"r-01M8VMQ47DRX7XMX5W8RF7E1A0/charge#1", "…F7E1A0/charge#1"},
		{"01M8VMQ47DRX7XMX5W8RF7E1A0", "…8RF7E1A0"},
		{"order-of-a-customer-with-a-long-name", "order-of-a-customer-with-a-long-name"},
	} {
		if got := shortID(tc.id); got != tc.want {
			t.Errorf("shortID(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}
