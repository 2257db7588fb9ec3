package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/internal/apitest"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/store"
)

// batonEnv runs a command in-process with an environment.
func batonEnv(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }}, args)
	return result{out.String(), errOut.String(), code}
}

func orderInput(i int) string {
	b, _ := json.Marshal(orders.NewOrder(i))
	return string(b)
}

// apiServer is the API over a real coordinator with the order services and
// flow and a flow that waits for a signal, on an httptest server.
func apiServer(t *testing.T, tokens ...string) (*httptest.Server, *embedded.Backend) {
	t.Helper()
	s := apitest.Start(t, tokens...)
	return s.Server, s.Backend
}

var startedLine = regexp.MustCompile(`(?m)^started run (r-\S+) of (\S+) v(\d+) for key (\S+): (\w+)$`)

// The run, schedule, dlq and status commands against an API on an
// httptest server.
func TestCommandsAgainstServer(t *testing.T) {
	t.Parallel()
	srv, b := apiServer(t)
	url := srv.URL
	ctx := context.Background()

	out := mustRun(t, "run", "start", "--server", url, "order", "o-000001", "--input", orderInput(1), "--wait")
	m := startedLine.FindStringSubmatch(out)
	if m == nil || m[2] != "order" || m[3] != "1" || m[4] != "o-000001" {
		t.Fatalf("run start:\n%s", out)
	}
	id := m[1]
	if !strings.Contains(out, "run "+id+" completed\n") {
		t.Errorf("run start --wait does not say it completed:\n%s", out)
	}
	out = mustRun(t, "run", "start", "--server", url, "order", "o-000001", "--input", orderInput(1))
	if !strings.Contains(out, "already has a run for key o-000001: "+id) {
		t.Errorf("second start:\n%s", out)
	}

	out = mustRun(t, "run", "get", "--server", url, id)
	for _, s := range []string{`(?m)^run:\s+` + id + `$`, `(?m)^flow:\s+order v1$`, `(?m)^status:\s+completed$`,
		`(?m)^charge\s+completed\s+#1\s+\+`, `(?m)^complete\s+completed`, `(?m)^input:\s+\{"order_id":"o-000001"`} {
		if !regexp.MustCompile(s).MatchString(out) {
			t.Errorf("run get lacks %s:\n%s", s, out)
		}
	}
	var run store.Run
	if err := json.Unmarshal([]byte(mustRun(t, "run", "get", "--json", "--server", url, id)), &run); err != nil || run.ID != id || run.Status != store.RunCompleted {
		t.Errorf("run get --json: %+v %v", run, err)
	}

	for i := 2; i <= 4; i++ {
		mustRun(t, "run", "start", "--server", url, "order", orders.NewOrder(i).OrderID, "--input", orderInput(i))
	}
	mustRun(t, "run", "start", "--server", url, "approval", "doc-1")
	out = mustRun(t, "run", "list", "--server", url)
	if lines := strings.Count(out, "\n"); lines != 6 || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "approval v1") {
		t.Errorf("run list: %d lines, want a header and 5:\n%s", lines, out)
	}
	out = mustRun(t, "run", "list", "--server", url, "--flow", "order", "--limit", "2")
	if !strings.Contains(out, "more: baton run list --server "+url+" --flow order --limit 2 --after r-") {
		t.Errorf("a short page does not say how to go on:\n%s", out)
	}
	var runs []store.Run
	if err := json.Unmarshal([]byte(mustRun(t, "run", "list", "--server", url, "--key", "doc-1", "--since", "1h", "--json")), &runs); err != nil || len(runs) != 1 || runs[0].Status != store.RunRunning {
		t.Fatalf("run list --key: %+v %v", runs, err)
	}
	if out := mustRun(t, "run", "list", "--server", url, "--until", "1h"); out != "no runs\n" {
		t.Errorf("runs until an hour ago:\n%s", out)
	}

	out = mustRun(t, "run", "signal", "--server", url, runs[0].ID, "approval.granted.v1", "--payload", `{"by":"ana"}`)
	if !strings.Contains(out, "delivered approval.granted.v1 to run "+runs[0].ID) {
		t.Errorf("run signal:\n%s", out)
	}
	mustRun(t, "run", "start", "--server", url, "approval", "doc-2")
	if err := json.Unmarshal([]byte(mustRun(t, "run", "list", "--server", url, "--key", "doc-2", "--json")), &runs); err != nil || len(runs) != 1 {
		t.Fatalf("doc-2: %+v %v", runs, err)
	}
	out = mustRun(t, "run", "cancel", "--server", url, runs[0].ID, "--reason", "withdrawn")
	if !strings.Contains(out, "cancelled run "+runs[0].ID) || !strings.Contains(out, "withdrawn") {
		t.Errorf("run cancel:\n%s", out)
	}
	r := batonCmd(t, ctx, "run", "cancel", "--server", url, runs[0].ID)
	if r.code != 1 || !strings.Contains(r.stderr, "already ended cancelled") {
		t.Errorf("cancel twice: exit %d, stderr %q", r.code, r.stderr)
	}
	r = batonCmd(t, ctx, "run", "get", "--server", url, "r-nope")
	if r.code != 1 || !strings.Contains(r.stderr, "no such run") || !strings.Contains(r.stderr, "see baton run list --server "+url) {
		t.Errorf("unknown run: exit %d, stderr %q", r.code, r.stderr)
	}
	r = batonCmd(t, ctx, "run", "start", "--server", url, "order", "o-bad", "--input", `{"order_id":"o-bad"}`)
	if r.code != 1 || !strings.Contains(r.stderr, "schema") {
		t.Errorf("input failing the schema: exit %d, stderr %q", r.code, r.stderr)
	}

	// Schedules.
	c := client.New(url, nil)
	if _, err := c.PutSchedule(ctx, store.Schedule{Name: "nightly", Flow: "approval", Cron: "0 3 * * *"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSchedule(ctx, store.Schedule{Name: "poll", Flow: "approval", Every: time.Hour, Overlap: store.OverlapAllow}); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "schedule", "list", "--server", url)
	if !regexp.MustCompile(`(?m)^nightly\s+approval\s+0 3 \* \* \*\s+skip\s+active`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^poll\s+approval\s+every 1h0m0s\s+allow\s+active`).MatchString(out) {
		t.Errorf("schedule list:\n%s", out)
	}
	if out := mustRun(t, "schedule", "pause", "--server", url, "nightly"); !strings.Contains(out, "paused schedule nightly (approval, 0 3 * * *): paused") {
		t.Errorf("pause:\n%s", out)
	}
	if s, _ := b.Schedule(ctx, "nightly"); !s.Paused {
		t.Errorf("not paused in the store: %+v", s)
	}
	var list []store.Schedule
	if err := json.Unmarshal([]byte(mustRun(t, "schedule", "list", "--server", url, "--json")), &list); err != nil || len(list) != 2 || !list[0].Paused {
		t.Errorf("schedule list --json: %+v %v", list, err)
	}
	if out := mustRun(t, "schedule", "resume", "--server", url, "nightly"); !strings.Contains(out, "resumed schedule nightly") || !strings.Contains(out, ": active") {
		t.Errorf("resume:\n%s", out)
	}
	r = batonCmd(t, ctx, "schedule", "pause", "--server", url, "nope")
	if r.code != 1 || !strings.Contains(r.stderr, "no such schedule") || !strings.Contains(r.stderr, "see baton schedule list --server") {
		t.Errorf("pause unknown: exit %d, stderr %q", r.code, r.stderr)
	}

	// dlq and status through the server.
	if out := mustRun(t, "dlq", "list", "--server", url); out != "no dead letters\n" {
		t.Errorf("dlq list:\n%s", out)
	}
	if err := b.AddDead(ctx, store.DeadLetter{Group: "payment", Type: "order.placed.v1", Body: []byte(`{"id":"e1"}`), EventID: "e1", CorrelationID: "o-000009", Attempts: 4, Reason: "gateway down"}); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "dlq", "list", "--server", url)
	if !strings.Contains(out, "gateway down") || !strings.Contains(out, "o-000009") {
		t.Errorf("dlq list:\n%s", out)
	}
	out = mustRun(t, "dlq", "drop", "--server", url, "--all")
	if !strings.Contains(out, "dropped 1 dead letters") {
		t.Errorf("dlq drop:\n%s", out)
	}
	out = mustRun(t, "status", "--server", url, "o-000001")
	if !strings.Contains(out, "o-000001: ") || !strings.Contains(out, orders.TypeOrderPlaced) {
		t.Errorf("status:\n%s", out)
	}
	r = batonCmd(t, ctx, "status", "--server", url, "o-999999")
	if r.code != 1 || !strings.Contains(r.stderr, "in the server at "+url) {
		t.Errorf("status of an unknown order: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCommandsWithToken(t *testing.T) {
	t.Parallel()
	srv, _ := apiServer(t, "s3cret-0123456789")
	r := batonCmd(t, context.Background(), "run", "list", "--server", srv.URL)
	if r.code != 1 || !strings.Contains(r.stderr, "a token is required") || !strings.Contains(r.stderr, "give --token or set BATON_TOKEN") {
		t.Errorf("no token: exit %d, stderr %q", r.code, r.stderr)
	}
	r = batonCmd(t, context.Background(), "dlq", "list", "--server", srv.URL, "--token", "wrong")
	if r.code != 1 || !strings.Contains(r.stderr, "not one this server accepts") {
		t.Errorf("wrong token: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := batonCmd(t, context.Background(), "run", "list", "--server", srv.URL, "--token", "s3cret-0123456789"); r.code != 0 {
		t.Errorf("--token: exit %d, stderr %q", r.code, r.stderr)
	}
	// From the environment: the server and the token.
	vars := map[string]string{"BATON_SERVER": srv.URL, "BATON_TOKEN": "s3cret-0123456789"}
	for _, args := range [][]string{{"run", "list"}, {"schedule", "list"}, {"dlq", "list"}} {
		if r := batonEnv(t, vars, args...); r.code != 0 {
			t.Errorf("%v with BATON_SERVER and BATON_TOKEN: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	r := batonCmd(t, context.Background(), "run", "list", "--server", url)
	if r.code != 1 || !strings.Contains(r.stderr, "is a baton server running at "+url) {
		t.Errorf("no server: exit %d, stderr %q", r.code, r.stderr)
	}
}

// webhookReceiver records the notifications it gets, checking their
// signatures.
type webhookReceiver struct {
	mu    sync.Mutex
	kinds []string
	bad   int
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	if notify.Verify("hook-secret", r.Header, body, time.Now(), time.Minute) != nil {
		w.bad++
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	var n flow.Notification
	json.Unmarshal(body, &n)
	w.kinds = append(w.kinds, n.Kind)
}

func (w *webhookReceiver) saw(kind string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Contains(strings.Join(w.kinds, " "), kind)
}

var listeningLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+) `)

// baton server end to end: runs started over HTTP complete, webhooks are
// signed, the socket serves --data, and a stop leaves an idle directory the
// commands open directly.
func TestServerCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hook := &webhookReceiver{}
	hooks := httptest.NewServer(hook)
	defer hooks.Close()
	// Orders meeting the gateway that is down are dead-lettered.
	const rate = 1.0
	down := firstWith(rate, orders.GatewayDown)
	fine := firstWith(rate, orders.GatewayFlaky)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errOut, getenv: func(k string) string {
			return map[string]string{"BATON_WEBHOOK_SECRET": "hook-secret"}[k]
		}}, []string{"server", "--demo", "--data", dir, "--addr", "127.0.0.1:0", "--fail-rate", fmt.Sprint(rate), "--webhook", hooks.URL})
	}()
	waitFor(t, "the server to listen", func() bool { return listeningLine.MatchString(errOut.String()) }, done, &errOut)
	url := listeningLine.FindStringSubmatch(errOut.String())[1]
	if !strings.Contains(errOut.String(), "flows: order v1") || !strings.Contains(errOut.String(), "no token: loopback only") {
		t.Errorf("server banner:\n%s", errOut.String())
	}
	c := client.New(url, nil)
	if err := c.Ready(context.Background()); err != nil {
		t.Fatalf("readyz: %v", err)
	}

	input := func(id string) string {
		var n int
		fmt.Sscanf(id, "o-%d", &n)
		return orderInput(n)
	}
	if out := mustRun(t, "run", "start", "--server", url, "order", fine, "--input", input(fine), "--wait"); !strings.Contains(out, "completed") {
		t.Errorf("%s (a flaky gateway):\n%s", fine, out)
	}
	r := batonCmd(t, context.Background(), "run", "start", "--server", url, "order", down, "--input", input(down), "--wait")
	if r.code != 1 || !strings.Contains(r.stdout, " failed: ") || !strings.Contains(r.stdout, "gave up") {
		t.Errorf("an order whose payment gateway is down: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the webhooks", func() bool {
		return hook.saw(flow.RunCompleted) && hook.saw(flow.RunFailed) && hook.saw(flow.DeadLetter)
	}, done, &errOut)
	// /metrics is open like /healthz, with the Go and process collectors.
	waitFor(t, "the webhooks on /metrics", func() bool {
		return scrapeMetrics(t, url+"/metrics")[`baton_webhook_deliveries_total{outcome="sent"}`] >= 3
	}, done, &errOut)
	m := scrapeMetrics(t, url+"/metrics")
	if m[`baton_runs_started_total{flow="order"}`] != 2 {
		t.Errorf("baton_runs_started_total{flow=\"order\"} = %v; want 2", m[`baton_runs_started_total{flow="order"}`])
	}
	for _, k := range []string{`go_goroutines{}`, `process_start_time_seconds{}`, `baton_group_backlog_messages{group="payment"}`} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s is not on the server's /metrics", k)
		}
	}
	hook.mu.Lock()
	if hook.bad > 0 {
		t.Errorf("%d webhooks with a bad signature", hook.bad)
	}
	hook.mu.Unlock()

	// Through the control socket.
	list := mustRun(t, "run", "list", "--data", dir)
	if !strings.Contains(list, fine) || !strings.Contains(list, down) {
		t.Errorf("run list --data on the running server:\n%s", list)
	}
	if out := mustRun(t, "dlq", "list", "--data", dir); !strings.Contains(out, down) {
		t.Errorf("dlq list --data on the running server:\n%s", out)
	}
	mustRun(t, "run", "start", "--data", dir, "order", "o-000000", "--input", orderInput(0))

	stop()
	if code := <-done; code != 0 {
		t.Fatalf("server ended with %d:\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "stopping") {
		t.Errorf("no word of stopping:\n%s", errOut.String())
	}
	// The directory is idle now: read directly.
	list = mustRun(t, "run", "list", "--data", dir, "--flow", "order")
	if strings.Count(list, "\n") != 4 {
		t.Errorf("run list on the idle directory:\n%s", list)
	}
	r = batonCmd(t, context.Background(), "run", "start", "--data", dir, "order", "o-000003")
	if r.code != 1 || !strings.Contains(r.stderr, "only a running server can start runs") {
		t.Errorf("start on an idle directory: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := mustRun(t, "schedule", "list", "--data", dir); out != "no schedules\n" {
		t.Errorf("schedule list on the idle directory:\n%s", out)
	}
}

// A server running only the flows of a YAML file; a step routed to a group
// no process here consumes waits for one.
func TestServerFlowsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "approval.yaml")
	err := os.WriteFile(file, []byte(`
flows:
  - name: approval
    version: 2
    input_schema: {type: object, required: [doc]}
    steps:
      - name: ask
        send: {type: approval.requested.v1}
  - name: signoff
    version: 1
    steps:
      - name: approve
        wait: {type: approval.granted.v1}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errOut}, []string{"server", "--data", data, "--addr", "127.0.0.1:0",
			"--flows", file, "--route", "approval.requested.v1=approvals"})
	}()
	waitFor(t, "the server to listen", func() bool { return listeningLine.MatchString(errOut.String()) }, done, &errOut)
	url := listeningLine.FindStringSubmatch(errOut.String())[1]
	if !strings.Contains(errOut.String(), "flows: approval v2, signoff v1") {
		t.Errorf("banner:\n%s", errOut.String())
	}
	r := batonCmd(t, context.Background(), "run", "start", "--server", url, "order", "o-1")
	if r.code != 1 || !strings.Contains(r.stderr, "no such flow") {
		t.Errorf("the order flow is off: exit %d, stderr %q", r.code, r.stderr)
	}
	r = batonCmd(t, context.Background(), "run", "start", "--server", url, "approval", "doc-1", "--input", `{"title":"x"}`)
	if r.code != 1 || !strings.Contains(r.stderr, "schema") {
		t.Errorf("input failing the file's schema: exit %d, stderr %q", r.code, r.stderr)
	}
	out1 := mustRun(t, "run", "start", "--server", url, "approval", "doc-1", "--input", `{"doc":"d-1"}`, "--json")
	var asked store.Run
	if err := json.Unmarshal([]byte(out1), &asked); err != nil || asked.Version != 2 || asked.Status != store.RunRunning {
		t.Fatalf("routed run: %+v %v\n%s", asked, err, out1)
	}
	if !regexp.MustCompile(`(?m)^ask\s+running\s+#1`).MatchString(mustRun(t, "run", "get", "--server", url, asked.ID)) {
		t.Errorf("the routed step is not waiting for its group")
	}
	m := startedLine.FindStringSubmatch(mustRun(t, "run", "start", "--server", url, "signoff", "doc-2"))
	if m == nil {
		t.Fatal("no run started")
	}
	mustRun(t, "run", "signal", "--server", url, m[1], "approval.granted.v1", "--payload", `{"by":"ana"}`)
	if out := mustRun(t, "run", "start", "--server", url, "signoff", "doc-2", "--wait"); !strings.Contains(out, "run "+m[1]+" completed") {
		t.Errorf("signalled run:\n%s", out)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("server ended with %d:\n%s", code, errOut.String())
	}
}

func TestServerToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: &errOut, getenv: func(k string) string {
			return map[string]string{"BATON_TOKEN": "env-token-0123456789"}[k]
		}}, []string{"server", "--demo", "--data", dir, "--addr", "127.0.0.1:0"})
	}()
	waitFor(t, "the server to listen", func() bool { return listeningLine.MatchString(errOut.String()) }, done, &errOut)
	url := listeningLine.FindStringSubmatch(errOut.String())[1]
	if !strings.Contains(errOut.String(), "1 token(s) required") {
		t.Errorf("banner:\n%s", errOut.String())
	}
	if r := batonCmd(t, context.Background(), "run", "list", "--server", url); r.code != 1 || !strings.Contains(r.stderr, "a token is required") {
		t.Errorf("without the token: exit %d, stderr %q", r.code, r.stderr)
	}
	mustRun(t, "run", "list", "--server", url, "--token", "env-token-0123456789")
	// The socket needs no token.
	mustRun(t, "run", "list", "--data", dir)
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz without a token: %v %v", resp, err)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("server ended with %d:\n%s", code, errOut.String())
	}
}

func TestServerUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"server", "--data", dir, "--addr", "0.0.0.0:0"}, 2, "set --token (or BATON_TOKEN)"},
		{[]string{"server", "--data", dir, "--addr", ":7070"}, 2, "is not loopback"},
		{[]string{"server", "--data", dir, "--webhook", "http://127.0.0.1:1/"}, 2, "--webhook needs --webhook-secret"},
		{[]string{"server", "--data", dir, "--route", "nonsense"}, 2, "give TYPE=GROUP"},
		{[]string{"server", "--data", dir, "--webhook-retry-for", "0s"}, 2, "--webhook-retry-for 0s"},
		{[]string{"server", "--data", dir, "--webhook", "http://127.0.0.1:1/", "--webhook-secret", "whsec_!", "--demo"}, 1, "must go on with the base64 of a key"},
		{[]string{"server", "--demo", "--data", dir, "--fail-rate", "3"}, 2, "--fail-rate 3"},
		{[]string{"server", "--data", dir, "--fail-rate", "0.1"}, 2, "--fail-rate is the demo's"},
		{[]string{"server", "--data", dir}, 2, "no flows to run: give --flows FILE"},
		{[]string{"server", "--data", dir, "--flows", dir + "/missing.yaml"}, 1, "missing.yaml"},
		{[]string{"server", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run"}, 2, "missing subcommand (start, get, list, cancel, signal)"},
		{[]string{"run", "stop"}, 2, `unknown subcommand "stop"; see baton run --help`},
		{[]string{"run", "--server", "x"}, 2, "give the subcommand before flags"},
		{[]string{"run", "start", "order"}, 2, "missing FLOW and KEY"},
		{[]string{"run", "start", "order", "k", "--input", "{nope"}, 2, "--input: not valid JSON"},
		{[]string{"run", "get"}, 2, "missing RUN-ID"},
		{[]string{"run", "list", "--status", "done"}, 2, `--status "done"`},
		{[]string{"run", "list", "--since", "yesterday"}, 2, "RFC 3339"},
		{[]string{"run", "list", "--limit", "0"}, 2, "--limit 0"},
		{[]string{"run", "list", "--server", "http://127.0.0.1:1", "--data", dir}, 2, "not both"},
		{[]string{"run", "list", "--server", "127.0.0.1:7070"}, 2, "give the server's URL"},
		{[]string{"run", "signal", "r-1"}, 2, "missing RUN-ID and TYPE"},
		{[]string{"schedule"}, 2, "missing subcommand (list, pause, resume)"},
		{[]string{"schedule", "pause"}, 2, "missing the schedule's NAME"},
		{[]string{"dlq", "list", "--server", "nope"}, 2, "give the server's URL"},
		{[]string{"run", "list", "--data", "/nonexistent/baton"}, 1, "no data directory at /nonexistent/baton"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := batonCmd(t, context.Background(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
		})
	}
}

func TestHelpOfServerCommands(t *testing.T) {
	t.Parallel()
	target := []string{"--server", "--token", "--data"}
	flagsOf := map[string][]string{
		"server":          {"--data", "--addr", "--token", "--tokens-file", "--allow-host", "--max-streams", "--max-streams-per-token", "--flows", "--route", "--webhook", "--webhook-secret", "--webhook-retry-for", "--webhook-backoff-cap", "--demo", "--services", "--fail-rate", "--stop-timeout"},
		"run start":       append([]string{"--input", "--version", "--wait", "--json"}, target...),
		"run get":         append([]string{"--json"}, target...),
		"run list":        append([]string{"--flow", "--status", "--key", "--since", "--until", "--limit", "--after", "--json"}, target...),
		"run cancel":      append([]string{"--reason", "--json"}, target...),
		"run signal":      append([]string{"--payload", "--json"}, target...),
		"schedule list":   append([]string{"--json"}, target...),
		"schedule pause":  target,
		"schedule resume": target,
		"status":          target,
		"dlq list":        target,
		"dlq show":        target,
		"dlq replay":      target,
		"dlq drop":        target,
		"tail":            target,
	}
	for path, names := range flagsOf {
		out := mustRun(t, append(strings.Fields(path), "--help")...)
		if !strings.HasPrefix(out, "baton "+path+": ") || !strings.Contains(out, "Usage:\n  baton "+path) || !strings.Contains(out, "Examples:\n  baton "+path) {
			t.Errorf("%s --help:\n%s", path, out)
		}
		for _, name := range names {
			if !regexp.MustCompile(`(?m)^  ` + name + `\b.*\(default`).MatchString(out) {
				t.Errorf("baton %s --help: no line for %s with its default:\n%s", path, name, out)
			}
		}
	}
	if out := mustRun(t, "server", "--help"); !strings.Contains(out, "127.0.0.1:7070") {
		t.Errorf("server --help does not give the default address:\n%s", out)
	}
	for _, cmd := range []string{"run", "schedule"} {
		out := mustRun(t, cmd, "--help")
		if !strings.HasPrefix(out, "baton "+cmd+": ") || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help:\n%s", cmd, out)
		}
	}
}
