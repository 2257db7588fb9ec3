package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// syncBuffer is a buffer a running command writes to while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	stdout, stderr string
	code           int
}

// batonCmd runs a command in-process.
func batonCmd(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	code := run(ctx, &env{stdout: &out, stderr: &errOut}, args)
	return result{out.String(), errOut.String(), code}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := batonCmd(t, context.Background(), args...)
	if r.code != 0 {
		t.Fatalf("baton %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// expected counts how the demo's first n orders end at a fault rate.
type expected struct{ completed, cancelled, dead int }

func expect(n int, rate float64) (expected, []string) {
	var want expected
	var deadIDs []string
	f := orders.Faults{Rate: rate}
	for i := range n {
		id := orders.NewOrder(i).OrderID
		switch f.For(id).Outcome() {
		case orders.TypeOrderCompleted:
			want.completed++
		case orders.TypeOrderCancelled:
			want.cancelled++
		default:
			want.dead++
			deadIDs = append(deadIDs, id)
		}
	}
	return want, deadIDs
}

var doneLine = regexp.MustCompile(`(?m)^done: (\d+) orders, (\d+) completed, (\d+) cancelled, (\d+) dead-lettered in \d+\.\d\d s \(\d+ orders/s\)$`)

func parseDone(t *testing.T, stdout string) (n int, got expected) {
	t.Helper()
	m := doneLine.FindAllStringSubmatch(stdout, -1)
	if len(m) != 1 {
		t.Fatalf("want exactly one done line, got %d in:\n%s", len(m), stdout)
	}
	atoi := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return atoi(m[0][1]), expected{atoi(m[0][2]), atoi(m[0][3]), atoi(m[0][4])}
}

func firstWith(rate float64, k orders.Fault) string {
	f := orders.Faults{Rate: rate}
	for i := 0; ; i++ {
		if id := orders.NewOrder(i).OrderID; f.For(id) == k {
			return id
		}
	}
}

func deadLetters(t *testing.T, dir string) []store.DeadLetter {
	t.Helper()
	var dead []store.DeadLetter
	if err := json.Unmarshal([]byte(mustRun(t, "dlq", "list", "--data", dir, "--json", "--limit", "10000")), &dead); err != nil {
		t.Fatal(err)
	}
	return dead
}

// The demo, then status and dlq on the directory it leaves.
func TestDemoThenInspect(t *testing.T) {
	t.Parallel()
	const n, rate = 300, 0.3
	dir := t.TempDir()
	want, deadIDs := expect(n, rate)
	if want.dead == 0 || want.cancelled == 0 {
		t.Fatalf("a fault rate of %v gives %+v: no case to test", rate, want)
	}

	out := mustRun(t, "demo", "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate), "--data", dir)
	gotN, got := parseDone(t, out)
	if gotN != n || got != want {
		t.Fatalf("done line says %d orders, %+v; want %d, %+v", gotN, got, n, want)
	}
	for _, s := range []string{"retries: ", "duplicates skipped: ", "dead letters by reason: exhausted " + fmt.Sprint(want.dead), "inspect an order: baton status --data " + dir} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}

	t.Run("resume", func(t *testing.T) {
		out := mustRun(t, "demo", "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate), "--data", dir)
		if _, got := parseDone(t, out); got != want {
			t.Fatalf("second run: %+v, want %+v", got, want)
		}
		if !strings.Contains(out, fmt.Sprintf("resumed: %d orders had ended", n)) {
			t.Errorf("no resume line:\n%s", out)
		}
		if dead := deadLetters(t, dir); len(dead) != want.dead {
			t.Errorf("%d dead letters after the second run, want %d still", len(dead), want.dead)
		}
	})

	t.Run("status completed", func(t *testing.T) {
		id := firstWith(rate, orders.NoFault)
		out := mustRun(t, "status", "--data", dir, id)
		for _, typ := range []string{orders.TypeOrderPlaced, orders.TypePaymentProcessed, orders.TypeInventoryReserved, orders.TypeNotificationSent, orders.TypeOrderCompleted} {
			if !strings.Contains(out, typ) {
				t.Errorf("status of %s lacks %s:\n%s", id, typ, out)
			}
		}
		if !strings.HasSuffix(out, "verdict: completed\n") {
			t.Errorf("status of %s does not end with its verdict:\n%s", id, out)
		}
		var entries []store.Entry
		if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--data", dir, id)), &entries); err != nil {
			t.Fatal(err)
		}
		handled := 0
		for _, e := range entries {
			if e.CorrelationID != id {
				t.Errorf("entry of %s in the history of %s", e.CorrelationID, id)
			}
			if e.Outcome == store.Handled {
				handled++
			}
		}
		if handled != 4 {
			t.Errorf("%d events handled, want 4 (placed, paid, reserved, notified): %+v", handled, entries)
		}
	})

	t.Run("status cancelled and dead", func(t *testing.T) {
		out := mustRun(t, "status", "--data", dir, firstWith(rate, orders.OutOfStock))
		if !strings.Contains(out, orders.TypePaymentRefunded) || !strings.HasSuffix(out, "verdict: cancelled\n") {
			t.Errorf("out-of-stock order:\n%s", out)
		}
		out = mustRun(t, "status", "--data", dir, deadIDs[0])
		if !strings.Contains(out, "verdict: dead-lettered: gave up after") || !strings.Contains(out, "gateway unavailable") {
			t.Errorf("dead order:\n%s", out)
		}
	})

	t.Run("status unknown", func(t *testing.T) {
		r := batonCmd(t, context.Background(), "status", "--data", dir, "o-999999")
		if r.code != 1 || !strings.Contains(r.stderr, `"o-999999"`) || !strings.Contains(r.stderr, "no event has that correlation id") {
			t.Errorf("unknown order: exit %d, stderr %q", r.code, r.stderr)
		}
		r = batonCmd(t, context.Background(), "status", "--data", t.TempDir(), "o-000001")
		if r.code != 1 || !strings.Contains(r.stderr, "no data directory at") || !strings.Contains(r.stderr, "baton demo --data") {
			t.Errorf("empty directory: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("dlq", func(t *testing.T) {
		dead := deadLetters(t, dir)
		if len(dead) != want.dead {
			t.Fatalf("%d dead letters, want %d", len(dead), want.dead)
		}
		for _, d := range dead {
			if d.Group != "payment" || d.Reason == "" || d.Attempts != orders.PaymentRetry.MaxAttempts {
				t.Errorf("dead letter %+v", d)
			}
		}
		list := mustRun(t, "dlq", "list", "--data", dir)
		if lines := strings.Count(list, "\n"); lines != want.dead+1 {
			t.Errorf("list has %d lines, want a header and %d:\n%s", lines, want.dead, list)
		}
		if page := mustRun(t, "dlq", "list", "--data", dir, "--limit", "1"); !strings.Contains(page, "--after "+dead[0].ID) {
			t.Errorf("a short page does not say how to go on:\n%s", page)
		}

		show := mustRun(t, "dlq", "show", "--data", dir, dead[0].ID)
		for _, s := range []string{"reason:", dead[0].Reason, "correlation id:  " + dead[0].CorrelationID, `"order_id": "` + dead[0].CorrelationID + `"`} {
			if !strings.Contains(show, s) {
				t.Errorf("show lacks %q:\n%s", s, show)
			}
		}
		for _, id := range []string{"424242", "not-an-id"} {
			r := batonCmd(t, context.Background(), "dlq", "show", "--data", dir, id)
			if r.code != 1 || !strings.Contains(r.stderr, "no such dead letter") {
				t.Errorf("show %s: exit %d, stderr %q", id, r.code, r.stderr)
			}
		}

		mustRun(t, "dlq", "drop", "--data", dir, dead[0].ID)
		if r := batonCmd(t, context.Background(), "dlq", "drop", "--data", dir, dead[0].ID); r.code != 1 || !strings.Contains(r.stderr, "no such dead letter") {
			t.Errorf("drop twice: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := batonCmd(t, context.Background(), "dlq", "replay", "--data", dir, dead[0].ID); r.code != 1 {
			t.Errorf("replay of a dropped letter: exit %d", r.code)
		}
		if got := deadLetters(t, dir); len(got) != want.dead-1 {
			t.Errorf("%d dead letters after a drop, want %d", len(got), want.dead-1)
		}

		// On an idle directory, a replay waits in the group's queue.
		out := mustRun(t, "dlq", "replay", "--data", dir, "--all")
		if !strings.Contains(out, fmt.Sprintf("replayed %d dead letters", want.dead-1)) || !strings.Contains(out, "next runs") {
			t.Errorf("replay --all:\n%s", out)
		}
		if got := deadLetters(t, dir); len(got) != 0 {
			t.Errorf("%d dead letters after replay --all", len(got))
		}
		out = mustRun(t, "dlq", "drop", "--data", dir, "--all")
		if !strings.Contains(out, "dropped 0 dead letters") {
			t.Errorf("drop --all of none:\n%s", out)
		}
	})
}

// A replay on a running demo goes back to the payment group, fails again and
// is dead-lettered again; a tail over the socket sees it happen.
func TestReplayAndTailOnRunningDemo(t *testing.T) {
	t.Parallel()
	const n, rate = 300, 0.3
	dir := t.TempDir()
	want, deadIDs := expect(n, rate)

	demoCtx, stopDemo := context.WithCancel(context.Background())
	defer stopDemo()
	var demoOut, demoErr syncBuffer
	demoDone := make(chan int, 1)
	go func() {
		demoDone <- run(demoCtx, &env{stdout: &demoOut, stderr: &demoErr},
			[]string{"demo", "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate), "--data", dir, "--serve"})
	}()
	waitFor(t, "the demo to serve", func() bool { return strings.Contains(demoErr.String(), "serving") }, demoDone, &demoErr)
	if _, got := parseDone(t, demoOut.String()); got != want {
		t.Fatalf("done line %+v, want %+v", got, want)
	}

	// Commands reach the running process through its socket.
	dead := deadLetters(t, dir)
	if len(dead) != want.dead {
		t.Fatalf("%d dead letters, want %d", len(dead), want.dead)
	}
	var target store.DeadLetter
	for _, d := range dead {
		if d.CorrelationID == deadIDs[0] {
			target = d
		}
	}
	if target.ID == "" {
		t.Fatalf("no dead letter for %s in %+v", deadIDs[0], dead)
	}

	tailCtx, stopTail := context.WithCancel(context.Background())
	var tailOut, tailErr syncBuffer
	tailDone := make(chan int, 1)
	go func() {
		tailDone <- run(tailCtx, &env{stdout: &tailOut, stderr: &tailErr}, []string{"tail", "--data", dir})
	}()
	// The tail starts after the entries there are: let it find the end
	// before anything is journaled.
	waitFor(t, "the tail to start", func() bool {
		return strings.Contains(tailErr.String(), "through the socket")
	}, tailDone, &tailErr)

	out := mustRun(t, "dlq", "replay", "--data", dir, target.ID)
	if !strings.Contains(out, "replayed dead letter "+target.ID) || !strings.Contains(out, "handles them now") {
		t.Errorf("replay:\n%s", out)
	}
	var again store.DeadLetter
	waitFor(t, "the replay to be dead-lettered again", func() bool {
		for _, d := range deadLetters(t, dir) {
			if d.CorrelationID == target.CorrelationID && d.ID != target.ID {
				again = d
				return true
			}
		}
		return false
	}, demoDone, &demoErr)
	if again.Group != "payment" || again.EventID != target.EventID || again.Attempts != orders.PaymentRetry.MaxAttempts {
		t.Errorf("dead-lettered again as %+v, want the payment group's %d attempts at %s", again, orders.PaymentRetry.MaxAttempts, target.EventID)
	}
	if got := deadLetters(t, dir); len(got) != want.dead {
		t.Errorf("%d dead letters after the replay failed again, want %d", len(got), want.dead)
	}
	history := mustRun(t, "status", "--data", dir, target.CorrelationID)
	if !strings.Contains(history, "replayed") || !strings.Contains(history, "verdict: dead-lettered") {
		t.Errorf("status after the replay:\n%s", history)
	}

	waitFor(t, "the tail to print the replay", func() bool {
		s := tailOut.String()
		return strings.Contains(s, "replayed") && strings.Contains(s, "dead-lettered") && strings.Contains(s, target.CorrelationID)
	}, tailDone, &tailErr)
	if strings.Contains(tailOut.String(), "o-000000 ") {
		t.Errorf("the tail printed entries from before it started:\n%s", tailOut.String())
	}
	stopTail()
	if code := <-tailDone; code != 0 {
		t.Errorf("tail ended with %d: %s", code, tailErr.String())
	}

	stopDemo()
	if code := <-demoDone; code != 0 {
		t.Errorf("demo ended with %d:\n%s\n%s", code, demoOut.String(), demoErr.String())
	}
}

// waitFor polls cond until it holds, failing when the command behind done
// ends first or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool, done chan int, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("waiting for %s: the command ended with %d:\n%s", what, code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func TestTailFromStartIdle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustRun(t, "demo", "--orders", "3", "--data", dir)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &out}, []string{"tail", "--from-start", "--data", dir})
	}()
	// 3 orders, 9 entries each.
	waitFor(t, "27 lines", func() bool { return strings.Count(out.String(), "\n") >= 27 }, done, &out)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail: exit %d", code)
	}
	if got := strings.Count(out.String(), "order.completed.v1"); got != 3 {
		t.Errorf("%d completions in:\n%s", got, out.String())
	}
}

func TestDemoTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := batonCmd(t, context.Background(), "demo", "--orders", "2000", "--data", dir, "--timeout", "1ms")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if doneLine.MatchString(r.stdout) || !strings.Contains(r.stdout, "timed out after 1ms") ||
		!strings.Contains(r.stdout, "orders did not end:") || !strings.Contains(r.stdout, "and ") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if lines := regexp.MustCompile(`(?m)^  o-\d{6}  `).FindAllString(r.stdout, -1); len(lines) != 10 {
		t.Errorf("%d stuck orders named, want 10:\n%s", len(lines), r.stdout)
	}
	// Resuming finishes the rest.
	out := mustRun(t, "demo", "--orders", "2000", "--data", dir)
	if _, got := parseDone(t, out); got.completed != 2000 {
		t.Errorf("resumed run: %+v", got)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"; see baton --help`},
		{[]string{"--verbose"}, 2, "unknown flag --verbose; see baton --help"},
		{[]string{"demo", "--bogus"}, 2, "unknown flag --bogus; see baton demo --help"},
		{[]string{"demo", "--orders", "x"}, 2, "see baton demo --help"},
		{[]string{"demo", "--fail-rate", "2"}, 2, "--fail-rate 2"},
		{[]string{"demo", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"status"}, 2, "missing ORDER-ID"},
		{[]string{"status", "--nope", "x"}, 2, "unknown flag --nope; see baton status --help"},
		{[]string{"dlq"}, 2, "missing subcommand"},
		{[]string{"dlq", "purge"}, 2, `unknown subcommand "purge"; see baton dlq --help`},
		{[]string{"dlq", "show"}, 2, "missing the dead letter's ID"},
		{[]string{"dlq", "replay"}, 2, "or --all"},
		{[]string{"dlq", "drop", "--all", "12"}, 2, "not both"},
		{[]string{"dlq", "list", "-x"}, 2, "unknown flag -x; see baton dlq list --help"},
		{[]string{"tail", "--since", "1"}, 2, "unknown flag --since"},
		{[]string{"status", "--data", "/nonexistent/baton", "o-1"}, 1, "no data directory at /nonexistent/baton; run baton demo --data /nonexistent/baton --keep first"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := batonCmd(t, context.Background(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
		})
	}
}

// Every command's help says what it does, its flags with their defaults, and
// an example.
func TestHelp(t *testing.T) {
	t.Parallel()
	flagsOf := map[string][]string{
		"demo":       {"--orders", "--fail-rate", "--data", "--keep", "--concurrency", "--timeout", "--serve", "--addr"},
		"status":     {"--data", "--json"},
		"tail":       {"--data", "--from-start", "--json"},
		"dlq list":   {"--data", "--limit", "--after", "--json"},
		"dlq show":   {"--data", "--json"},
		"dlq replay": {"--data", "--all"},
		"dlq drop":   {"--data", "--all"},
	}
	for path, names := range flagsOf {
		for _, h := range []string{"--help", "-h"} {
			args := append(strings.Fields(path), h)
			out := mustRun(t, args...)
			if !strings.HasPrefix(out, "baton "+path+": ") || !strings.Contains(out, "Usage:\n  baton "+path) || !strings.Contains(out, "Examples:\n  baton "+path) {
				t.Errorf("%s:\n%s", strings.Join(args, " "), out)
			}
			for _, name := range names {
				if !regexp.MustCompile(`(?m)^  ` + name + `\b.*\(default`).MatchString(out) {
					t.Errorf("baton %s --help: no line for %s with its default:\n%s", path, name, out)
				}
			}
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		out := mustRun(t, args...)
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.name+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, out)
			}
		}
	}
	if out := mustRun(t, "help", "demo"); !strings.HasPrefix(out, "baton demo: ") {
		t.Errorf("help demo:\n%s", out)
	}
	out := mustRun(t, "dlq", "--help")
	for _, c := range dlqCommands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("dlq --help does not list %s:\n%s", c.name, out)
		}
	}
}
