package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/store"
)

// approvalFlow waits for an external event: approval.granted.v1.
func approvalFlow() flow.Flow {
	return flow.Flow{Name: "approval", Version: 1, Steps: []flow.Step{
		{Name: "approve", Wait: &flow.Wait{Type: "approval.granted.v1"}},
	}}
}

// stack is a real coordinator with the order services and flow, a hub, a
// scheduler and the API over them.
type stack struct {
	srv    *httptest.Server
	b      *embedded.Backend
	co     *flow.Coordinator
	hub    *notify.Hub
	ledger *orders.Ledger
	token  string
}

func newStack(t *testing.T, tokens ...string) *stack {
	t.Helper()
	return newStackWith(t, func(c *api.Config) { c.Tokens = tokens })
}

// newStackWith is newStack with the API's configuration changed by set.
func newStackWith(t *testing.T, set func(*api.Config)) *stack {
	t.Helper()
	ctx := context.Background()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := orders.NewLedger("")
	if err != nil {
		t.Fatal(err)
	}
	services := orders.Services(ledger, orders.Faults{})
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	hub, err := notify.New(notify.Config{})
	if err != nil {
		t.Fatal(err)
	}
	co, err := flow.New(flow.Config{Store: b, Transport: b, Services: services, Notifier: hub,
		Flows: []flow.Flow{orchestration.Flow(), approvalFlow()}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := flow.NewScheduler(flow.SchedulerConfig{Store: b, Starter: co})
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []func(context.Context) error{rt.Start, hub.Start, co.Start} {
		if err := start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cfg := api.Config{Store: b, Transport: b, Coordinator: co, Scheduler: sched, Publisher: rt, Hub: hub}
	set(&cfg)
	h, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		hub.Stop(stop)
		srv.Close()
		co.Stop(stop)
		rt.Stop(stop)
		b.Close()
		ledger.Close()
	})
	st := &stack{srv: srv, b: b, co: co, hub: hub, ledger: ledger}
	if len(cfg.Tokens) > 0 {
		st.token = cfg.Tokens[0]
	}
	return st
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiError returns the error body of r, failing unless it has the status.
func (r response) apiError(t *testing.T, status int) api.ErrorDetail {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var eb api.ErrorBody
	r.decode(t, &eb)
	if eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("error body %s: want a code and a message", r.body)
	}
	return eb.Error
}

func (s *stack) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func orderStart(i int) map[string]any {
	o := orders.NewOrder(i)
	return map[string]any{"flow": "order", "key": o.OrderID, "input": o}
}

// waitRun polls GET /v1/runs/{id} until the run has the status.
func (s *stack) waitRun(t *testing.T, id string, want store.RunStatus) store.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var run store.Run
		s.do(t, "GET", "/v1/runs/"+id, nil).decode(t, &run)
		if run.Status == want {
			return run
		}
		if run.Status.Terminal() || time.Now().After(deadline) {
			t.Fatalf("run %s is %s (%s), want %s", id, run.Status, run.Error, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, "first-token-abcdefgh", "second-token-abcdefgh")
	for _, tc := range []struct {
		name, header string
		status       int
		challenge    string
	}{
		{"missing", "", 401, `Bearer realm="baton"`},
		{"not bearer", "Basic Zm9vOmJhcg==", 401, `Bearer realm="baton"`},
		{"wrong", "Bearer nope", 401, `error="invalid_token"`},
		{"prefix of a token", "Bearer first", 401, `error="invalid_token"`},
		{"right", "Bearer first-token-abcdefgh", 200, ""},
		{"second", "Bearer second-token-abcdefgh", 200, ""},
	} {
		for _, path := range []string{"/v1/flows", "/v1/runs", "/v1/dead-letters", "/v1/schedules"} {
			req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d, want %d: %s", tc.name, path, resp.StatusCode, tc.status, raw)
				continue
			}
			if tc.status == 401 {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.challenge) {
					t.Errorf("%s %s: WWW-Authenticate %q, want %q in it", tc.name, path, got, tc.challenge)
				}
				if !strings.Contains(string(raw), `"code":"unauthorized"`) {
					t.Errorf("%s %s: body %s", tc.name, path, raw)
				}
			}
		}
	}
	// The health checks are open.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s without a token: %d", path, resp.StatusCode)
		}
	}
}

// /readyz answers why it is not ready only in the server's log: its body,
// open to anyone, says what kind of failure it is and the error id to grep
// for.
func TestReady(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var started atomic.Bool
	ready := func(context.Context) error {
		if !started.Load() {
			return fmt.Errorf("the coordinator has not started: dial tcp 10.9.8.7:5432: password authentication failed")
		}
		return nil
	}
	var logs lockedBuffer
	h, err := api.New(api.Config{Store: b, Transport: b, Ready: ready, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	status := func(path string) (int, api.ErrorDetail, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var eb api.ErrorBody
		_ = json.Unmarshal(raw, &eb)
		return resp.StatusCode, eb.Error, string(raw)
	}
	notReady := func(why string) {
		t.Helper()
		code, e, body := status("/readyz")
		if code != 503 || e.Code != baton.Unavailable || e.ErrorID == "" || !strings.Contains(e.Message, e.ErrorID) {
			t.Errorf("%s: %d %s, want 503 unavailable with an error id", why, code, body)
		}
		for _, secret := range []string{"10.9.8.7", "password", "coordinator", "store", "pebble", "closed"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s: the body %s tells %q", why, body, secret)
			}
		}
		if line := logLine(logs.String(), e.ErrorID); !strings.Contains(line, why) {
			t.Errorf("%s: the log line of error id %s is %q, want the detail in it", why, e.ErrorID, line)
		}
	}
	notReady("not started")
	if code, _, _ := status("/healthz"); code != 200 {
		t.Errorf("healthz while not ready: %d, want 200 (alive)", code)
	}
	started.Store(true)
	if code, _, body := status("/readyz"); code != 200 {
		t.Errorf("ready: %d %s", code, body)
	}
	b.Close()
	notReady("the store does not answer")
}

// logLine returns the line of logs that holds s, "" when none does.
func logLine(logs, s string) string {
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// Starting a key twice answers 202, then 200 with the same run; one run is
// stored. The run completes.
func TestStartIdempotent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	first := s.do(t, "POST", "/v1/runs", orderStart(1))
	if first.status != 202 {
		t.Fatalf("first start: %d %s", first.status, first.body)
	}
	var a api.Started
	first.decode(t, &a)
	if a.ID == "" || a.Status != store.RunRunning || a.StatusURL != "/v1/runs/"+a.ID || first.header.Get("Location") != a.StatusURL {
		t.Fatalf("first start: %+v, Location %q", a, first.header.Get("Location"))
	}
	if a.Key != "o-000001" || a.Flow != "order" || a.Version != 1 {
		t.Errorf("started %+v", a.Run)
	}
	second := s.do(t, "POST", "/v1/runs", orderStart(1))
	var b api.Started
	second.decode(t, &b)
	if second.status != 200 || b.ID != a.ID || b.StatusURL != a.StatusURL || second.header.Get("Location") != a.StatusURL {
		t.Fatalf("second start: %d %+v", second.status, b)
	}
	// The key from the header works the same.
	o := orders.NewOrder(1)
	third := s.do(t, "POST", "/v1/runs", map[string]any{"flow": "order", "input": o}, "Idempotency-Key", o.OrderID)
	var c api.Started
	third.decode(t, &c)
	if third.status != 200 || c.ID != a.ID {
		t.Fatalf("start with the header: %d %s", third.status, third.body)
	}

	var page api.RunPage
	s.do(t, "GET", "/v1/runs?key=o-000001", nil).decode(t, &page)
	if len(page.Runs) != 1 || page.Runs[0].ID != a.ID {
		t.Fatalf("runs with the key: %+v", page.Runs)
	}
	run := s.waitRun(t, a.ID, store.RunCompleted)
	if run.Steps["complete"] == nil || run.Steps["complete"].Status != store.StepCompleted {
		t.Errorf("completed run's steps: %+v", run.Steps)
	}
	if got := s.ledger.Count(o.OrderID, orders.EffectCharged); got != 1 {
		t.Errorf("charged %d times, want once", got)
	}
}

func TestStartNeedsKey(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ch, cancel := s.hub.Subscribe(flow.InputInvalid)
	defer cancel()
	o := orders.NewOrder(2)
	e := s.do(t, "POST", "/v1/runs", map[string]any{"flow": "order", "input": o}).apiError(t, 400)
	if e.Code != baton.Invalid || !strings.Contains(e.Message, "key is required") || !strings.Contains(e.Message, "Idempotency-Key") {
		t.Errorf("no key: %+v", e)
	}
	e = s.do(t, "POST", "/v1/runs", map[string]any{"flow": "order", "key": "a", "input": o}, "Idempotency-Key", "b").apiError(t, 400)
	if !strings.Contains(e.Message, "differ") {
		t.Errorf("two keys: %+v", e)
	}
	e = s.do(t, "POST", "/v1/runs", map[string]any{"key": "a", "input": o}).apiError(t, 400)
	if !strings.Contains(e.Message, `"flow" is required`) {
		t.Errorf("no flow: %+v", e)
	}
	// The alert channel heard of the refusal.
	select {
	case n := <-ch:
		if n.Kind != flow.InputInvalid || !strings.Contains(n.Message, "key is required") {
			t.Errorf("notification %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no run.invalid notification")
	}
	if runs, _ := s.co.Runs(context.Background(), store.RunQuery{}); len(runs) != 0 {
		t.Errorf("refused starts stored runs: %+v", runs)
	}
}

// Bad input, each with its answer; nothing is stored, nothing crashes.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ch, cancel := s.hub.Subscribe(flow.InputInvalid)
	defer cancel()
	huge := `{"flow":"order","key":"k","input":{"pad":"` + strings.Repeat("x", api.DefaultMaxBody) + `"}}`
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code               baton.Code
		message            string
	}{
		{"malformed JSON", "POST", "/v1/runs", `{"flow": "order",`, 400, baton.Invalid, "malformed JSON"},
		{"malformed JSON syntax", "POST", "/v1/runs", `{"flow" "order"}`, 400, baton.Invalid, "malformed JSON: invalid character"},
		{"not an object", "POST", "/v1/runs", `[1, 2]`, 400, baton.Invalid, "malformed JSON"},
		{"two values", "POST", "/v1/runs", `{"flow":"order","key":"k"} {}`, 400, baton.Invalid, "more than one JSON value"},
		{"empty body", "POST", "/v1/runs", ``, 400, baton.Invalid, "the body is empty"},
		{"unknown field", "POST", "/v1/runs", `{"flow":"order","key":"k","inptu":{}}`, 400, baton.Invalid, `unknown field "inptu"`},
		{"wrong type", "POST", "/v1/runs", `{"flow":"order","key":"k","version":"one"}`, 400, baton.Invalid, `field "version": want a number, got string`},
		{"unknown flow", "POST", "/v1/runs", `{"flow":"nope","key":"k"}`, 404, baton.NotFound, "nope"},
		{"unknown version", "POST", "/v1/runs", `{"flow":"order","version":7,"key":"k"}`, 404, baton.NotFound, "v7"},
		{"input failing its schema", "POST", "/v1/runs", `{"flow":"order","key":"k","input":{"order_id":"o-1","items":[]}}`, 400, baton.Invalid, "schema"},
		{"oversized body", "POST", "/v1/runs", huge, 413, api.TooLarge, "larger than the limit of 1 MiB"},
		{"unknown run", "GET", "/v1/runs/r-nope", nil, 404, baton.NotFound, "r-nope"},
		{"cancel unknown run", "POST", "/v1/runs/r-nope/cancel", `{"reason":"x"}`, 404, baton.NotFound, "r-nope"},
		{"signal unknown run", "POST", "/v1/runs/r-nope/events", `{"type":"approval.granted.v1"}`, 404, baton.NotFound, "r-nope"},
		{"bad status", "GET", "/v1/runs?status=done", nil, 400, baton.Invalid, `status="done"`},
		{"bad since", "GET", "/v1/runs?since=yesterday", nil, 400, baton.Invalid, "RFC 3339"},
		{"bad until", "GET", "/v1/runs?until=2026-13-01", nil, 400, baton.Invalid, "RFC 3339"},
		{"since after until", "GET", "/v1/runs?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", nil, 400, baton.Invalid, "not before"},
		{"bad limit", "GET", "/v1/runs?limit=0", nil, 400, baton.Invalid, "limit"},
		{"unknown after", "GET", "/v1/runs?after=r-nope", nil, 400, baton.Invalid, "no such run"},
		{"invalid cron", "POST", "/v1/schedules", `{"name":"s","flow":"order","cron":"61 * * * *"}`, 400, baton.Invalid, "cron expression"},
		{"cron and every", "POST", "/v1/schedules", `{"name":"s","flow":"order","cron":"@hourly","every":"1m"}`, 400, baton.Invalid, "not both"},
		{"bad every", "POST", "/v1/schedules", `{"name":"s","flow":"order","every":"soon"}`, 400, baton.Invalid, "not a duration"},
		{"schedule of an unknown flow", "POST", "/v1/schedules", `{"name":"s","flow":"nope","every":"1m"}`, 404, baton.NotFound, "nope"},
		{"pause unknown schedule", "POST", "/v1/schedules/nope/pause", nil, 404, baton.NotFound, "nope"},
		{"event without type", "POST", "/v1/events", `{"data":{}}`, 400, baton.Invalid, `"type" is required`},
		{"event with a bad type", "POST", "/v1/events", `{"type":"order placed"}`, 400, baton.Invalid, "bad event type"},
		{"unknown stream kind", "GET", "/v1/stream?kind=run.started", nil, 400, baton.Invalid, "run.started"},
		{"wrong method", "PUT", "/v1/runs", `{}`, 405, api.MethodNotAllowed, "use GET, HEAD, POST"},
		{"unknown path", "GET", "/v1/nothing", nil, 404, baton.NotFound, "no such endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body)
			e := r.apiError(t, tc.status)
			if e.Code != tc.code || !strings.Contains(e.Message, tc.message) {
				t.Errorf("%+v, want code %s and %q in the message", e, tc.code, tc.message)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
	// Nothing was stored, and the schema failure reached the alert channel.
	if runs, err := s.co.Runs(context.Background(), store.RunQuery{}); err != nil || len(runs) != 0 {
		t.Errorf("runs after bad input: %+v %v", runs, err)
	}
	if list, _ := s.b.ListSchedules(context.Background()); len(list) != 0 {
		t.Errorf("schedules after bad input: %+v", list)
	}
	sawSchema := false
	for !sawSchema {
		select {
		case n := <-ch:
			sawSchema = strings.Contains(n.Message, "schema")
			if sawSchema && (n.Request == nil || n.Request.Flow != "order" || n.Request.Key != "k") {
				t.Errorf("run.invalid for the schema carries the request %+v", n.Request)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no run.invalid notification for the input failing its schema")
		}
	}
	// The server still works.
	if r := s.do(t, "POST", "/v1/runs", orderStart(3)); r.status != 202 {
		t.Errorf("a good start after bad ones: %d %s", r.status, r.body)
	}
}

func TestListRuns(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	before := time.Now().UTC()
	var ids []string
	for i := range 3 {
		var st api.Started
		s.do(t, "POST", "/v1/runs", orderStart(10+i)).decode(t, &st)
		ids = append(ids, st.ID)
	}
	var ap api.Started
	s.do(t, "POST", "/v1/runs", map[string]any{"flow": "approval", "key": "doc-1"}).decode(t, &ap)
	for _, id := range ids {
		s.waitRun(t, id, store.RunCompleted)
	}
	get := func(q string) []store.Run {
		var p api.RunPage
		r := s.do(t, "GET", "/v1/runs"+q, nil)
		if r.status != 200 {
			t.Fatalf("GET /v1/runs%s: %d %s", q, r.status, r.body)
		}
		r.decode(t, &p)
		return p.Runs
	}
	if got := get(""); len(got) != 4 || got[0].ID != ap.ID {
		t.Errorf("all runs, newest first: %+v", got)
	}
	if got := get("?flow=order&status=completed"); len(got) != 3 {
		t.Errorf("completed orders: %d", len(got))
	}
	if got := get("?status=running"); len(got) != 1 || got[0].ID != ap.ID {
		t.Errorf("running: %+v", got)
	}
	if got := get("?flow=approval&key=doc-1"); len(got) != 1 || got[0].ID != ap.ID {
		t.Errorf("by key: %+v", got)
	}
	page := get("?flow=order&limit=2")
	if len(page) != 2 {
		t.Fatalf("page of 2: %+v", page)
	}
	if rest := get("?flow=order&limit=2&after=" + page[1].ID); len(rest) != 1 || rest[0].ID != ids[0] {
		t.Errorf("second page: %+v", rest)
	}
	if got := get("?since=" + before.Add(-time.Minute).Format(time.RFC3339Nano)); len(got) != 4 {
		t.Errorf("since a minute before: %d runs", len(got))
	}
	if got := get("?until=" + before.Add(-time.Minute).Format(time.RFC3339)); len(got) != 0 {
		t.Errorf("until a minute before: %d runs", len(got))
	}
	var fp api.FlowPage
	s.do(t, "GET", "/v1/flows", nil).decode(t, &fp)
	if len(fp.Flows) != 2 || fp.Flows[0].Name != "approval" || fp.Flows[1].Name != "order" || len(fp.Flows[1].InputSchema) == 0 {
		t.Errorf("flows: %+v", fp.Flows)
	}
}

func TestCancelAndSignal(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	start := func(key string) string {
		var st api.Started
		r := s.do(t, "POST", "/v1/runs", map[string]any{"flow": "approval", "key": key})
		if r.status != 202 {
			t.Fatalf("start %s: %d %s", key, r.status, r.body)
		}
		r.decode(t, &st)
		return st.ID
	}

	cancelled := start("doc-cancel")
	var run store.Run
	r := s.do(t, "POST", "/v1/runs/"+cancelled+"/cancel", `{"reason":"withdrawn"}`)
	r.decode(t, &run)
	if r.status != 200 || run.Status != store.RunCancelled || !strings.Contains(run.Error, "withdrawn") {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if e := s.do(t, "POST", "/v1/runs/"+cancelled+"/cancel", nil).apiError(t, 409); e.Code != baton.Conflict {
		t.Errorf("cancel twice: %+v", e)
	}

	waiting := start("doc-sign")
	if e := s.do(t, "POST", "/v1/runs/"+waiting+"/events", `{"type":"approval.denied.v1"}`).apiError(t, 409); !strings.Contains(e.Message, "not waiting") {
		t.Errorf("an event the run does not wait for: %+v", e)
	}
	r = s.do(t, "POST", "/v1/runs/"+waiting+"/events", `{"type":"approval.granted.v1","data":{"by":"ana"}}`)
	if r.status != 200 {
		t.Fatalf("signal: %d %s", r.status, r.body)
	}
	run = s.waitRun(t, waiting, store.RunCompleted)
	if res, ok := flow.Lookup(run.Data, "steps.approve.by"); !ok || string(res) != `"ana"` {
		t.Errorf("the event's data is not the step's result: %s", run.Data)
	}
	if e := s.do(t, "POST", "/v1/runs/"+waiting+"/events", `{"type":"approval.granted.v1"}`).apiError(t, 409); e.Code != baton.Conflict {
		t.Errorf("signal a completed run: %+v", e)
	}
}

// An event published through the API goes through the services by
// choreography.
func TestPublish(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	o := orders.NewOrder(42)
	r := s.do(t, "POST", "/v1/events", map[string]any{"type": orders.TypeOrderPlaced, "subject": o.OrderID, "correlationid": o.OrderID, "data": o})
	var p api.Published
	r.decode(t, &p)
	if r.status != 202 || p.ID == "" || p.CorrelationID != o.OrderID || p.Status != "accepted" {
		t.Fatalf("publish: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.ledger.Count(o.OrderID, orders.EffectCompleted) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("order %s not completed by choreography", o.OrderID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var h api.History
	s.do(t, "GET", "/v1/history/"+o.OrderID, nil).decode(t, &h)
	if len(h.Entries) == 0 || h.Entries[0].EventID != p.ID || h.Entries[0].Outcome != store.Published {
		t.Errorf("history: %+v", h.Entries)
	}
	// An id given is kept: publishing it again is harmless.
	r = s.do(t, "POST", "/v1/events", map[string]any{"id": "mine-1", "type": "nobody.listens.v1"})
	r.decode(t, &p)
	if r.status != 202 || p.ID != "mine-1" || p.CorrelationID != "mine-1" {
		t.Errorf("publish with an id: %d %s", r.status, r.body)
	}
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.do(t, "POST", "/v1/schedules", `{"name":"nightly","flow":"approval","cron":"0 3 * * *","input":{"a":1}}`)
	var sc api.Schedule
	r.decode(t, &sc)
	if r.status != 201 || sc.Name != "nightly" || sc.Cron != "0 3 * * *" || sc.Overlap != store.OverlapSkip || sc.Paused || r.header.Get("Location") != "/v1/schedules/nightly" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = s.do(t, "POST", "/v1/schedules", `{"name":"nightly","flow":"approval","every":"90s","overlap":"allow"}`)
	sc = api.Schedule{}
	r.decode(t, &sc)
	if r.status != 200 || sc.Every != "1m30s" || sc.Cron != "" || sc.Overlap != store.OverlapAllow {
		t.Fatalf("replace: %d %s", r.status, r.body)
	}
	s.do(t, "POST", "/v1/schedules", `{"name":"hourly","flow":"order","cron":"@hourly","catch_up":2}`)
	var page api.SchedulePage
	s.do(t, "GET", "/v1/schedules", nil).decode(t, &page)
	if len(page.Schedules) != 2 || page.Schedules[0].Name != "hourly" || page.Schedules[1].Name != "nightly" || page.Schedules[0].CatchUp != 2 {
		t.Fatalf("list: %+v", page.Schedules)
	}
	r = s.do(t, "POST", "/v1/schedules/nightly/pause", nil)
	r.decode(t, &sc)
	if r.status != 200 || !sc.Paused {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if stored, _ := s.b.Schedule(context.Background(), "nightly"); !stored.Paused {
		t.Errorf("paused in the API, not in the store: %+v", stored)
	}
	s.do(t, "GET", "/v1/schedules/nightly", nil).decode(t, &sc)
	if !sc.Paused {
		t.Errorf("show after pause: %+v", sc)
	}
	r = s.do(t, "POST", "/v1/schedules/nightly/resume", nil)
	r.decode(t, &sc)
	if r.status != 200 || sc.Paused {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	if r := s.do(t, "DELETE", "/v1/schedules/nightly", nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	s.do(t, "DELETE", "/v1/schedules/nightly", nil).apiError(t, 404)
	s.do(t, "GET", "/v1/schedules/nightly", nil).apiError(t, 404)
	e := s.do(t, "POST", "/v1/schedules", `{"name":"bad","flow":"order","cron":"every tuesday"}`).apiError(t, 400)
	if !strings.Contains(e.Message, `cron expression "every tuesday"`) {
		t.Errorf("invalid cron: %+v", e)
	}
}

// The stream delivers a run's completion as a server-sent event.
func TestStream(t *testing.T) {
	t.Parallel()
	s := newStack(t, "stream-token-0123")
	req, _ := http.NewRequest("GET", s.srv.URL+"/v1/stream?kind=run.*", nil)
	req.Header.Set("Authorization", "Bearer stream-token-0123")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	// Subscribed once the first line is written.
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "retry:") {
		t.Fatalf("first line %q", lines.Text())
	}
	var st api.Started
	s.do(t, "POST", "/v1/runs", orderStart(7)).decode(t, &st)
	var kind string
	for lines.Scan() {
		line := lines.Text()
		if k, ok := strings.CutPrefix(line, "event: "); ok {
			kind = k
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && kind == flow.RunCompleted {
			var n flow.Notification
			if err := json.Unmarshal([]byte(data), &n); err != nil {
				t.Fatal(err)
			}
			if n.Run == nil || n.Run.ID != st.ID || n.Run.Status != store.RunCompleted {
				t.Fatalf("notification %s", data)
			}
			return
		}
	}
	t.Fatalf("the stream ended without run.completed: %v", lines.Err())
}

func TestDeadLettersOnTheFullAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	err := s.b.AddDead(ctx, store.DeadLetter{Group: "payment", Type: "order.placed.v1", Body: []byte(`{}`), EventID: "e1", CorrelationID: "o-1", Attempts: 4, Reason: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	var page api.DeadLetterPage
	s.do(t, "GET", "/v1/dead-letters", nil).decode(t, &page)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].Reason != "boom" {
		t.Fatalf("dead letters %+v", page.DeadLetters)
	}
	if r := s.do(t, "DELETE", "/v1/dead-letters/"+page.DeadLetters[0].ID, nil); r.status != 204 {
		t.Fatalf("drop: %d %s", r.status, r.body)
	}
	s.do(t, "POST", "/v1/dead-letters/"+page.DeadLetters[0].ID+"/replay", nil).apiError(t, 404)
}

// The parts a process does not run answer 404 with why.
func TestWithoutCoordinator(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	for _, path := range []string{"/v1/runs", "/v1/flows", "/v1/schedules", "/v1/stream"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(raw), "this process") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, raw)
		}
	}
}

func TestNewServer(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := api.Config{Store: b, Transport: b}
	for _, addr := range []string{"127.0.0.1:7070", "127.1.2.3:80", "[::1]:7070", "localhost:7070", "LOCALHOST:1"} {
		srv, err := api.NewServer(addr, cfg)
		if err != nil {
			t.Errorf("%s without a token: %v", addr, err)
			continue
		}
		if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 30*time.Second || srv.WriteTimeout != 30*time.Second || srv.IdleTimeout == 0 {
			t.Errorf("%s: timeouts %v %v %v %v", addr, srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
		}
	}
	for _, addr := range []string{":7070", "0.0.0.0:7070", "[::]:7070", "192.168.1.10:7070", "example.com:80", "localhost.example.com:80"} {
		_, err := api.NewServer(addr, cfg)
		if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "--token") || !strings.Contains(err.Error(), "BATON_TOKEN") {
			t.Errorf("%s without a token: %v, want a refusal saying to set --token", addr, err)
		}
		withToken := cfg
		withToken.Tokens = []string{"a-token-of-16-bytes"}
		if _, err := api.NewServer(addr, withToken); err != nil {
			t.Errorf("%s with a token: %v", addr, err)
		}
	}
	if _, err := api.New(api.Config{Store: b, Transport: b, Tokens: []string{""}}); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("an empty token: %v", err)
	}
}

// A long poll of the journal outlasts the server's write timeout.
func TestJournalWaitOutlastsWriteTimeout(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h, err := api.New(api.Config{Store: b, Transport: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/journal?wait=300ms")
	if err != nil {
		t.Fatalf("a wait longer than the write timeout: %v", err)
	}
	defer resp.Body.Close()
	var page api.JournalPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s, %v", resp.Status, err)
	}
}
