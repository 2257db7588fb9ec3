package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/otel/trace"
)

// The tests here run flows end to end: the embedded backend, services under a
// bus.Runtime, and a Coordinator routing commands to them. The services are
// small handlers of the tests' own that record what they saw.

// waitLimit bounds every wait for something to happen.
const waitLimit = 20 * time.Second

// recorder records the commands the test services handled, in order.
type recorder struct {
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	name string // who handled it (a step, a compensation)
	id   string // the command's id: runID/path#attempt
	key  string // its correlation id: the run's business key
	data json.RawMessage
}

func (r *recorder) add(name string, e baton.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, seen{name: name, id: e.ID, key: e.CorrelationID, data: e.Data})
}

// names lists who handled a command, in the order they did.
func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		out = append(out, s.name)
	}
	return out
}

// ids lists the command ids name handled, in order.
func (r *recorder) ids(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		if s.name == name {
			out = append(out, s.id)
		}
	}
	return out
}

func (r *recorder) count(name string) int { return len(r.ids(name)) }

// countKey is how many commands name handled for the run with business key.
func (r *recorder) countKey(name, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.seen {
		if s.name == name && s.key == key {
			n++
		}
	}
	return n
}

// answer is a handler that records the command as name and replies with an
// event of type typ carrying data (the command's own data when data is nil).
func answer(rec *recorder, name, typ string, data any) baton.HandlerFunc {
	return func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		rec.add(name, e)
		return reply(typ, e, data), nil
	}
}

func reply(typ string, in baton.Event, data any) []baton.Event {
	payload := in.Data
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		payload = b
	}
	return []baton.Event{{Type: typ, DataContentType: "application/json", Data: payload}}
}

// silent is a handler that records the command and never answers.
func silent(rec *recorder, name string) baton.HandlerFunc {
	return func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		rec.add(name, e)
		return nil, nil
	}
}

// gate holds handlers back until the test opens it.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate  { return &gate{ch: make(chan struct{})} }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait() { <-g.ch }

// until polls cond from a handler, for at most waitLimit, and reports
// whether it came to hold.
func until(cond func() bool) bool {
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// gated is a handler that records the command, waits for the gate, and then
// answers like answer.
func gated(rec *recorder, g *gate, name, typ string, data any) baton.HandlerFunc {
	return func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		rec.add(name, e)
		g.wait()
		return reply(typ, e, data), nil
	}
}

func service(name string, handlers ...baton.Handler) baton.Service {
	return baton.Service{Name: name, Handlers: handlers}
}

func handler(typ string, fn baton.HandlerFunc) baton.Handler {
	return baton.Handler{Type: typ, Func: fn}
}

// notifier is a Notifier that records what it is told.
type notifier struct {
	mu  sync.Mutex
	got []flow.Notification
}

func (n *notifier) Notify(ctx context.Context, x flow.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
}

func (n *notifier) all() []flow.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// kinds lists the kinds of the notifications about one run, in order.
func (n *notifier) kinds(runID string) []string {
	var out []string
	for _, x := range n.all() {
		if x.Run != nil && x.Run.ID == runID {
			out = append(out, x.Kind)
		}
	}
	return out
}

// setup says what a harness runs.
type setup struct {
	flows    []flow.Flow
	services []baton.Service
	dir      string // the data directory; empty for an in-memory backend
	// coordinator is the coordinator's concurrency: 1 makes it take the
	// replies in the order they were sent, which the tests that check that
	// a late reply is ignored rely on.
	coordinator int
	workers     int // each service group's concurrency (default 4)
	validate    func(context.Context, flow.StartRequest) error
	notes       *notifier
	gates       []*gate // opened before the harness stops
	tracer      trace.TracerProvider
}

// harness is a backend, a runtime with the services, and a coordinator.
type harness struct {
	t     *testing.T
	s     setup
	b     *embedded.Backend
	rt    *bus.Runtime
	co    *flow.Coordinator
	notes *notifier
}

func launch(t *testing.T, s setup) *harness {
	t.Helper()
	cfg := embedded.Config{Memory: true}
	if s.dir != "" {
		cfg = embedded.Config{Dir: s.dir}
	}
	b, err := embedded.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, b: b, notes: s.notes}
	if h.notes == nil {
		h.notes = &notifier{}
	}
	workers := s.workers
	if workers == 0 {
		workers = 4
	}
	h.rt, err = bus.New(bus.Config{Transport: b, Store: b, Concurrency: workers, TracerProvider: s.tracer})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	for _, svc := range s.services {
		if err := h.rt.Register(svc); err != nil {
			b.Close()
			t.Fatal(err)
		}
	}
	h.co, err = flow.New(flow.Config{
		Store: b, Transport: b, Flows: s.flows, Services: s.services,
		Notifier: h.notes, Validate: s.validate, Concurrency: s.coordinator,
		TimerPoll: 5 * time.Millisecond, TracerProvider: s.tracer,
	})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.rt.Start(ctx); err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := h.co.Start(ctx); err != nil {
		h.rt.Stop(ctx)
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	return h
}

// stop stops the coordinator and the runtime and closes the backend. It may
// be called more than once.
func (h *harness) stop() {
	h.t.Helper()
	for _, g := range h.s.gates {
		g.open()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.co.Stop(ctx); err != nil {
		h.t.Errorf("stop the coordinator: %v", err)
	}
	if err := h.rt.Stop(ctx); err != nil {
		h.t.Errorf("stop the runtime: %v", err)
	}
	if err := h.b.Close(); err != nil {
		h.t.Errorf("close the backend: %v", err)
	}
}

func (h *harness) start(name, key string, input any) store.Run {
	h.t.Helper()
	var in json.RawMessage
	if input != nil {
		b, err := json.Marshal(input)
		if err != nil {
			h.t.Fatal(err)
		}
		in = b
	}
	run, created, err := h.co.StartRun(context.Background(), flow.StartRequest{Flow: name, Key: key, Input: in})
	if err != nil {
		h.t.Fatalf("start %s %s: %v", name, key, err)
	}
	if !created {
		h.t.Fatalf("start %s %s: the run existed already", name, key)
	}
	return run
}

func (h *harness) run(id string) store.Run {
	h.t.Helper()
	r, err := h.co.Run(context.Background(), id)
	if err != nil {
		h.t.Fatalf("run %s: %v", id, err)
	}
	return r
}

// waitRun polls the run until cond holds, and fails the test, showing the
// run, when it does not within waitLimit.
func (h *harness) waitRun(id, what string, cond func(store.Run) bool) store.Run {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		r := h.run(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited %v for %s; the run is now %s", waitLimit, what, describe(r))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus waits for the run to end with status want, failing at once
// when it ends otherwise.
func (h *harness) waitStatus(id string, want store.RunStatus) store.Run {
	h.t.Helper()
	r := h.waitRun(id, "status "+string(want), func(r store.Run) bool { return r.Status == want || r.Status.Terminal() })
	if r.Status != want {
		h.t.Fatalf("the run ended %s, want %s: %s", r.Status, want, describe(r))
	}
	return r
}

// waitNotes waits for the notifications about a run to be want: the
// notifier hears of a transition just after it is saved.
func (h *harness) waitNotes(runID string, want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := h.notes.kinds(runID)
		if slices.Equal(got, want) {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			h.t.Fatalf("notifications about run %s: %v, want %v", runID, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventually polls cond until it holds, within waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// describe shows a run for a failure message.
func describe(r store.Run) string {
	var steps []string
	for path, st := range r.Steps {
		s := fmt.Sprintf("%s=%s", path, st.Status)
		if st.Attempts > 0 {
			s += fmt.Sprintf("(attempt %d)", st.Attempts)
		}
		if st.Error != "" {
			s += fmt.Sprintf("[%s]", st.Error)
		}
		steps = append(steps, s)
	}
	sort.Strings(steps)
	return fmt.Sprintf("run %s v%d status %s rev %d error %q steps {%s} data %s",
		r.ID, r.Version, r.Status, r.Rev, r.Error, strings.Join(steps, " "), r.Data)
}

// stepStatus is the status of the step at path, "" when it has not started.
func stepStatus(r store.Run, path string) store.StepStatus {
	if st := r.Steps[path]; st != nil {
		return st.Status
	}
	return ""
}

// lookup returns the JSON at path in the run data, "" when there is none.
func lookup(r store.Run, path string) string {
	v, ok := flow.Lookup(r.Data, path)
	if !ok {
		return ""
	}
	return string(v)
}

// handled waits until the services have handled (and settled) at least n
// commands in all: what they replied is then queued for the coordinator.
func (h *harness) handled(n int64) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("the services to have handled %d commands", n), func() bool {
		return h.rt.Stats().Handled() >= n
	})
}

// drain makes sure the coordinator (with concurrency 1) has taken every
// reply queued so far: it starts a run of probe, whose replies queue behind
// them, and waits for it to complete.
func (h *harness) drain(probe, key string) {
	h.t.Helper()
	r := h.start(probe, key, nil)
	h.waitStatus(r.ID, store.RunCompleted)
}

var probeFlow = flow.Flow{Name: "probe", Version: 1, Steps: []flow.Step{{Name: "ping", Send: &flow.Send{Type: "probe.ping.v1"}}}}

func probeService(rec *recorder) baton.Service {
	return service("probe", handler("probe.ping.v1", answer(rec, "ping", "probe.pong.v1", nil)))
}

func send(typ string, failOn ...string) *flow.Send {
	return &flow.Send{Type: typ, FailOn: failOn}
}

// A step failing after three completed ones undoes them in reverse order,
// each once, and then runs the flow's OnFailure steps.
func TestCompensationRunsInReverseOrder(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	undo := func(name string) *flow.Step {
		return &flow.Step{Name: "undo_" + name, Send: send(name + ".undo.v1")}
	}
	f := flow.Flow{Name: "book", Version: 1,
		Steps: []flow.Step{
			{Name: "a", Send: send("a.do.v1"), Compensate: undo("a")},
			{Name: "b", Send: send("b.do.v1"), Compensate: undo("b")},
			{Name: "c", Send: send("c.do.v1"), Compensate: undo("c")},
			{Name: "d", Send: send("d.do.v1", "d.refused.v1")},
			{Name: "e", Send: send("e.do.v1")},
		},
		OnFailure: []flow.Step{{Name: "alert", Send: send("ops.alert.v1")}},
	}
	work := service("work")
	undos := service("undo")
	for _, n := range []string{"a", "b", "c", "e"} {
		work.Handlers = append(work.Handlers, handler(n+".do.v1", answer(rec, n, n+".done.v1", map[string]string{"did": n})))
	}
	for _, n := range []string{"a", "b", "c"} {
		undos.Handlers = append(undos.Handlers, handler(n+".undo.v1", answer(rec, "undo_"+n, n+".undone.v1", nil)))
	}
	work.Handlers = append(work.Handlers, handler("d.do.v1", answer(rec, "d", "d.refused.v1", map[string]string{"why": "no seats"})))
	ops := service("ops", handler("ops.alert.v1", answer(rec, "alert", "ops.alerted.v1", nil)))
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{work, undos, ops}})

	run := h.start("book", "trip-1", map[string]string{"trip": "1"})
	r := h.waitStatus(run.ID, store.RunFailed)

	want := []string{"a", "b", "c", "d", "undo_c", "undo_b", "undo_a", "alert"}
	if got := rec.names(); !slices.Equal(got, want) {
		t.Errorf("commands handled %v, want %v", got, want)
	}
	for _, p := range []string{"a", "b", "c"} {
		if s := stepStatus(r, p); s != store.StepCompensated {
			t.Errorf("step %s is %q, want compensated", p, s)
		}
		if s := stepStatus(r, p+"/compensate/undo_"+p); s != store.StepCompleted {
			t.Errorf("compensation of %s is %q, want completed", p, s)
		}
	}
	if s := stepStatus(r, "d"); s != store.StepFailed {
		t.Errorf("step d is %q, want failed", s)
	}
	if s := stepStatus(r, "e"); s != "" {
		t.Errorf("step e after the failure is %q, want never started", s)
	}
	if s := stepStatus(r, "on_failure/alert"); s != store.StepCompleted {
		t.Errorf("OnFailure step is %q, want completed", s)
	}
	if !strings.Contains(r.Error, "step d") || !strings.Contains(r.Error, "d.refused.v1") {
		t.Errorf("run error %q: want it to name step d and the reply d.refused.v1", r.Error)
	}
	if got := lookup(r, "steps.a.did"); got != `"a"` {
		t.Errorf("steps.a.did = %s, want \"a\"", got)
	}
	h.waitNotes(run.ID, flow.RunFailed)
}

// Join all: the parallel step completes only once every branch has; the
// next step starts after it, once.
func TestParallelJoinAll(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	slow := newGate()
	f := flow.Flow{Name: "fan", Version: 1, Steps: []flow.Step{
		{Name: "p", Parallel: &flow.Parallel{Join: "all", Branches: [][]flow.Step{
			{{Name: "b1", Send: send("b1.do.v1")}},
			{{Name: "b2", Send: send("b2.do.v1")}},
			{{Name: "b3", Send: send("b3.do.v1")}},
		}}},
		{Name: "after", Send: send("after.do.v1")},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}, gates: []*gate{slow}, services: []baton.Service{
		service("s1", handler("b1.do.v1", answer(rec, "b1", "b1.done.v1", map[string]int{"n": 1}))),
		service("s2", handler("b2.do.v1", answer(rec, "b2", "b2.done.v1", map[string]int{"n": 2}))),
		service("s3", handler("b3.do.v1", gated(rec, slow, "b3", "b3.done.v1", map[string]int{"n": 3}))),
		service("s4", handler("after.do.v1", answer(rec, "after", "after.done.v1", nil))),
	}})

	run := h.start("fan", "k", nil)
	r := h.waitRun(run.ID, "branches 1 and 2 done while 3 waits", func(r store.Run) bool {
		return stepStatus(r, "p/0/b1") == store.StepCompleted && stepStatus(r, "p/1/b2") == store.StepCompleted &&
			rec.count("b3") == 1
	})
	if s := stepStatus(r, "p"); s != store.StepRunning {
		t.Errorf("with a branch still under way the parallel step is %q, want running", s)
	}
	if s := stepStatus(r, "after"); s != "" || rec.count("after") != 0 {
		t.Errorf("the step after the join started (%q) before every branch was done", s)
	}
	slow.open()
	r = h.waitStatus(run.ID, store.RunCompleted)
	if s := stepStatus(r, "p"); s != store.StepCompleted {
		t.Errorf("parallel step %q, want completed", s)
	}
	for i, name := range []string{"b1", "b2", "b3"} {
		if got := lookup(r, "steps."+name+".n"); got != fmt.Sprint(i+1) {
			t.Errorf("steps.%s.n = %q, want %d", name, got, i+1)
		}
	}
	if n := rec.count("after"); n != 1 {
		t.Errorf("the step after the join ran %d times, want once", n)
	}
}

// Join first: the first branch to finish wins; the others are skipped and
// their late replies change nothing; the flow goes on once.
func TestParallelJoinFirst(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	slow := newGate()
	f := flow.Flow{Name: "race", Version: 1, Steps: []flow.Step{
		{Name: "p", Parallel: &flow.Parallel{Join: "first", Branches: [][]flow.Step{
			{{Name: "slow1", Send: send("slow1.do.v1")}, {Name: "then1", Send: send("then.do.v1")}},
			{{Name: "fast", Send: send("fast.do.v1")}},
			{{Name: "slow2", Send: send("slow2.do.v1")}},
		}}},
		{Name: "after", Send: send("after.do.v1")},
		// Keeps the run open, so that a late reply that were taken would
		// still change it.
		{Name: "hold", Wait: &flow.Wait{Type: "race.release.v1"}},
	}}
	h := launch(t, setup{flows: []flow.Flow{f, probeFlow}, coordinator: 1, gates: []*gate{slow}, services: []baton.Service{
		service("s1", handler("slow1.do.v1", gated(rec, slow, "slow1", "slow1.done.v1", nil))),
		service("s2", handler("fast.do.v1", answer(rec, "fast", "fast.done.v1", map[string]string{"winner": "fast"}))),
		service("s3", handler("slow2.do.v1", gated(rec, slow, "slow2", "slow2.done.v1", nil))),
		service("s4", handler("after.do.v1", answer(rec, "after", "after.done.v1", nil)), handler("then.do.v1", answer(rec, "then1", "then.done.v1", nil))),
		probeService(rec),
	}})

	run := h.start("race", "k", nil)
	r := h.waitRun(run.ID, "the run to wait at hold", func(r store.Run) bool { return stepStatus(r, "hold") == store.StepWaiting })
	if s := stepStatus(r, "p"); s != store.StepCompleted {
		t.Errorf("parallel step %q, want completed", s)
	}
	for _, p := range []string{"p/0/slow1", "p/2/slow2"} {
		if s := stepStatus(r, p); s != store.StepSkipped {
			t.Errorf("losing branch step %s is %q, want skipped", p, s)
		}
	}
	if got := lookup(r, "steps.fast.winner"); got != `"fast"` {
		t.Errorf("steps.fast.winner = %q, want the fast branch's result", got)
	}

	// The losers answer now; the replies queue ahead of the probe's.
	eventually(t, "both slow branches to have their commands", func() bool { return rec.count("slow1") == 1 && rec.count("slow2") == 1 })
	slow.open()
	h.handled(4) // fast, after, slow1, slow2
	h.drain("probe", "probe-1")

	r2 := h.run(run.ID)
	if r2.Rev != r.Rev {
		t.Errorf("the late replies changed the run: rev %d -> %d: %s", r.Rev, r2.Rev, describe(r2))
	}
	for _, p := range []string{"p/0/slow1", "p/2/slow2"} {
		if s := stepStatus(r2, p); s != store.StepSkipped {
			t.Errorf("after its late reply, step %s is %q, want skipped", p, s)
		}
	}
	if got := lookup(r2, "steps.slow1"); got != "" {
		t.Errorf("a skipped branch's late result was kept: steps.slow1 = %s", got)
	}
	if n := rec.count("then1"); n != 0 {
		t.Errorf("the losing branch went on to its next step %d times", n)
	}

	if _, err := h.co.Signal(context.Background(), run.ID, baton.Event{Type: "race.release.v1"}); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(run.ID, store.RunCompleted)
	if n := rec.count("after"); n != 1 {
		t.Errorf("the step after the join ran %d times, want once", n)
	}
}

// Join all: one branch failing fails the parallel step and the run; the
// branch under way is skipped and the completed branch compensated.
func TestParallelJoinAllBranchFails(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	slow := newGate()
	f := flow.Flow{Name: "fan", Version: 1, Steps: []flow.Step{
		{Name: "p", Parallel: &flow.Parallel{Branches: [][]flow.Step{
			{{Name: "b1", Send: send("b1.do.v1"), Compensate: &flow.Step{Name: "undo_b1", Send: send("b1.undo.v1")}}},
			{{Name: "b2", Send: send("b2.do.v1", "b2.refused.v1")}},
			{{Name: "b3", Send: send("b3.do.v1")}},
		}}},
		{Name: "after", Send: send("after.do.v1")},
	}}
	var h *harness
	h = launch(t, setup{flows: []flow.Flow{f}, gates: []*gate{slow}, services: []baton.Service{
		service("s1", handler("b1.do.v1", answer(rec, "b1", "b1.done.v1", nil)), handler("b1.undo.v1", answer(rec, "undo_b1", "b1.undone.v1", nil))),
		// b2 refuses once the run has b1 done, so that b1 has something
		// to undo. A command's causation id is its run's id.
		service("s2", handler("b2.do.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			rec.add("b2", e)
			if !until(func() bool {
				r, err := h.co.Run(ctx, e.CausationID)
				return err == nil && stepStatus(r, "p/0/b1") == store.StepCompleted
			}) {
				return nil, errors.New("b1 never completed")
			}
			return reply("b2.refused.v1", e, nil), nil
		})),
		service("s3", handler("b3.do.v1", gated(rec, slow, "b3", "b3.done.v1", nil))),
		service("s4", handler("after.do.v1", answer(rec, "after", "after.done.v1", nil))),
	}})

	run := h.start("fan", "k", nil)
	r := h.waitStatus(run.ID, store.RunFailed)
	if st := r.Steps["p"]; st == nil || st.Status != store.StepFailed || !strings.Contains(st.Error, "1 of 3 branches failed") {
		t.Errorf("parallel step %+v, want failed with \"1 of 3 branches failed\"", st)
	}
	if s := stepStatus(r, "p/1/b2"); s != store.StepFailed {
		t.Errorf("step b2 %q, want failed", s)
	}
	if s := stepStatus(r, "p/2/b3"); s != store.StepSkipped {
		t.Errorf("step b3, under way when b2 failed, is %q, want skipped", s)
	}
	if s := stepStatus(r, "after"); s != "" || rec.count("after") != 0 {
		t.Errorf("the step after a failed join started (%q)", s)
	}
	// b1 completed before b2 answered, so its compensation ran, once.
	if s := stepStatus(r, "p/0/b1"); s != store.StepCompensated {
		t.Errorf("step b1 %q, want compensated", s)
	}
	if n := rec.count("undo_b1"); n != 1 {
		t.Errorf("b1's compensation ran %d times, want once", n)
	}
	if !strings.Contains(r.Error, "p/1/b2") {
		t.Errorf("run error %q: want it to name the failed branch step", r.Error)
	}
}

// A choice takes the first branch whose condition holds on an earlier
// step's result, or the default branch.
func TestChoice(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	notify := func(name string) []flow.Step {
		return []flow.Step{{Name: name, Notify: &flow.Notify{Message: "branch " + name + " for {{input.who}}"}}}
	}
	f := flow.Flow{Name: "route", Version: 1, Steps: []flow.Step{
		{Name: "score", Send: send("score.compute.v1")}, // the service echoes the input
		{Name: "pick", Choice: []flow.Branch{
			{When: &flow.Condition{Path: "steps.score.tier", Op: "eq", Value: "gold"}, Steps: notify("gold")},
			{When: &flow.Condition{Path: "steps.score.points", Op: "gt", Value: 100}, Steps: notify("big")},
			{When: &flow.Condition{Path: "steps.score.country", Op: "in", Value: []any{"fr", "de"}}, Steps: notify("eu")},
			{Steps: notify("other")},
		}},
		{Name: "end", Send: send("score.done.v1")},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{
		service("scorer", handler("score.compute.v1", answer(rec, "score", "score.computed.v1", nil)),
			handler("score.done.v1", answer(rec, "end", "score.ended.v1", nil))),
	}})

	branches := []string{"gold", "big", "eu", "other"}
	for _, tc := range []struct {
		name   string
		input  map[string]any
		branch int // counted from 1
	}{
		{"eq holds first", map[string]any{"who": "ann", "tier": "gold", "points": 500}, 1},
		{"gt", map[string]any{"who": "bob", "tier": "silver", "points": 101}, 2},
		{"in, gt not holding at its bound", map[string]any{"who": "cy", "points": 100, "country": "de"}, 3},
		{"default", map[string]any{"who": "dee", "points": 5, "country": "us"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := h.start("route", tc.input["who"].(string), tc.input)
			r := h.waitStatus(run.ID, store.RunCompleted)
			if st := r.Steps["pick"]; st == nil || st.Branch != tc.branch {
				t.Fatalf("choice state %+v, want branch %d: %s", st, tc.branch, describe(r))
			}
			for i, b := range branches {
				path := fmt.Sprintf("pick/%d/%s", i, b)
				want := store.StepStatus("")
				if i+1 == tc.branch {
					want = store.StepCompleted
				}
				if s := stepStatus(r, path); s != want {
					t.Errorf("step %s is %q, want %q", path, s, want)
				}
			}
			var alerts []string
			for _, n := range h.notes.all() {
				if n.Kind == flow.Alert && n.Run != nil && n.Run.ID == run.ID {
					alerts = append(alerts, n.Message)
				}
			}
			want := []string{"branch " + branches[tc.branch-1] + " for " + tc.input["who"].(string)}
			if !slices.Equal(alerts, want) {
				t.Errorf("alerts %q, want %q", alerts, want)
			}
			if n := rec.countKey("end", run.Key); n != 1 {
				t.Errorf("the step after the choice ran %d times, want once", n)
			}
		})
	}
}

// A service that never answers: the step fails after its timeout.
func TestTimeoutFailsStep(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := flow.Flow{Name: "mute", Version: 1, Steps: []flow.Step{
		{Name: "ask", Send: send("mute.ask.v1"), Timeout: flow.Duration(100 * time.Millisecond)},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{
		service("mute", handler("mute.ask.v1", silent(rec, "ask"))),
	}})
	run := h.start("mute", "k", nil)
	r := h.waitStatus(run.ID, store.RunFailed)
	st := r.Steps["ask"]
	if st == nil || st.Status != store.StepFailed || st.Attempts != 1 || !strings.Contains(st.Error, "no answer within 100ms") {
		t.Errorf("step %+v, want failed after 1 attempt with \"no answer within 100ms\"", st)
	}
	if !strings.Contains(r.Error, "no answer within") {
		t.Errorf("run error %q, want the timeout", r.Error)
	}
	if n := rec.count("ask"); n != 1 {
		t.Errorf("the service got %d commands, want 1", n)
	}
}

// With a retry policy a timed-out attempt is tried again, each attempt a new
// command id, until the attempts are spent.
func TestTimeoutRetries(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := flow.Flow{Name: "mute", Version: 1, Steps: []flow.Step{
		{Name: "ask", Send: send("mute.ask.v1"), Timeout: flow.Duration(100 * time.Millisecond),
			Retry: &baton.RetryPolicy{MaxAttempts: 3, Base: 10 * time.Millisecond}},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{
		service("mute", handler("mute.ask.v1", silent(rec, "ask"))),
	}})
	run := h.start("mute", "k", nil)
	r := h.waitStatus(run.ID, store.RunFailed)
	st := r.Steps["ask"]
	if st == nil || st.Attempts != 3 || !strings.Contains(st.Error, "no answer within 100ms") || !strings.Contains(st.Error, "after 3 attempts") {
		t.Errorf("step %+v, want failed after 3 attempts with \"no answer within 100ms\"", st)
	}
	eventually(t, "the third command to reach the service", func() bool { return rec.count("ask") >= 3 })
	want := []string{run.ID + "/ask#1", run.ID + "/ask#2", run.ID + "/ask#3"}
	if got := rec.ids("ask"); !slices.Equal(got, want) {
		t.Errorf("commands %q, want three distinct ids %q", got, want)
	}
}

// A reply to an attempt that timed out, arriving while the next attempt is
// under way, is ignored: here it would have failed the step.
func TestReplyToAbandonedAttemptIgnored(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	second := newGate() // opened when a later attempt arrives
	var h *harness
	f := flow.Flow{Name: "late", Version: 1, Steps: []flow.Step{
		{Name: "ask", Send: send("late.ask.v1", "late.refused.v1"), Timeout: flow.Duration(200 * time.Millisecond),
			Retry: &baton.RetryPolicy{MaxAttempts: 5, Base: 10 * time.Millisecond}},
	}}
	h = launch(t, setup{flows: []flow.Flow{f}, coordinator: 1, gates: []*gate{second}, services: []baton.Service{
		service("late", handler("late.ask.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			rec.add("ask", e)
			if strings.HasSuffix(e.ID, "#1") {
				// Answer only once the coordinator has given up on this
				// attempt and sent the next, and refuse: taking this
				// reply would fail the step.
				second.wait()
				return reply("late.refused.v1", e, map[string]int{"attempt": 1}), nil
			}
			second.open()
			// Let the stale reply be queued first.
			until(func() bool { return h.rt.Stats().Handled() >= 1 })
			return reply("late.answered.v1", e, map[string]string{"id": e.ID}), nil
		})),
	}})
	run := h.start("late", "k", nil)
	r := h.waitStatus(run.ID, store.RunCompleted)
	st := r.Steps["ask"]
	if st.Attempts < 2 {
		t.Errorf("step %+v: want at least 2 attempts", st)
	}
	want := fmt.Sprintf(`{"id":"%s/ask#%d"}`, run.ID, st.Attempts)
	if got := lookup(r, "steps.ask"); got != want {
		t.Errorf("the step's result is %s, want the answer to its last attempt %s", got, want)
	}
	if strings.Contains(string(r.Data), "late.refused") {
		t.Errorf("the stale reply reached the run data: %s", r.Data)
	}
}

// A service that dead-letters its command (a permanent error) sends
// baton.step.failed back: the coordinator retries the step at once, without
// waiting for the step's timeout, per the step's policy.
func TestDeadLetteredCommandRetried(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var calls atomic.Int32
	f := flow.Flow{Name: "dl", Version: 1, Steps: []flow.Step{
		{Name: "charge", Send: send("card.charge.v1"), Timeout: flow.Duration(time.Hour),
			Retry: &baton.RetryPolicy{MaxAttempts: 3, Base: 10 * time.Millisecond}},
	}}
	f2 := flow.Flow{Name: "dl2", Version: 1, Steps: []flow.Step{
		{Name: "charge2", Send: send("card.block.v1"), Timeout: flow.Duration(time.Hour),
			Retry: &baton.RetryPolicy{MaxAttempts: 2, Base: 10 * time.Millisecond}},
	}}
	h := launch(t, setup{flows: []flow.Flow{f, f2}, services: []baton.Service{
		service("card",
			handler("card.charge.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
				rec.add("charge", e)
				if calls.Add(1) < 3 {
					return nil, baton.Permanent(errors.New("card reader on fire"))
				}
				return reply("card.charged.v1", e, map[string]string{"ok": "yes"}), nil
			}),
			handler("card.block.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
				rec.add("charge2", e)
				return nil, baton.Permanent(errors.New("blocked for good"))
			})),
	}})

	t.Run("recovers", func(t *testing.T) {
		run := h.start("dl", "k", nil)
		r := h.waitStatus(run.ID, store.RunCompleted)
		if st := r.Steps["charge"]; st.Attempts != 3 {
			t.Errorf("step %+v, want 3 attempts", st)
		}
		want := []string{run.ID + "/charge#1", run.ID + "/charge#2", run.ID + "/charge#3"}
		if got := rec.ids("charge"); !slices.Equal(got, want) {
			t.Errorf("commands %q, want %q", got, want)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		run := h.start("dl2", "k", nil)
		r := h.waitStatus(run.ID, store.RunFailed)
		st := r.Steps["charge2"]
		if st.Attempts != 2 || !strings.Contains(st.Error, "service card gave up") ||
			!strings.Contains(st.Error, "blocked for good") || !strings.Contains(st.Error, "after 2 attempts") {
			t.Errorf("step %+v, want failed after 2 attempts, naming the service's reason", st)
		}
		if n := rec.count("charge2"); n != 2 {
			t.Errorf("the service got %d commands, want 2", n)
		}
	})
	dead, err := h.b.ListDead(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 4 {
		t.Errorf("%d dead letters, want 4 (two per run)", len(dead))
	}
	for _, d := range dead {
		if d.Group != "card" {
			t.Errorf("dead letter of group %q, want card", d.Group)
		}
	}
}

// A reply listed in FailOn is a business outcome: the step fails at once,
// whatever its retry policy.
func TestFailOnNotRetried(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := flow.Flow{Name: "pay", Version: 1, Steps: []flow.Step{
		{Name: "charge", Send: send("pay.charge.v1", "pay.declined.v1"),
			Retry: &baton.RetryPolicy{MaxAttempts: 5, Base: 10 * time.Millisecond}},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{
		service("pay", handler("pay.charge.v1", answer(rec, "charge", "pay.declined.v1", map[string]string{"reason": "insufficient funds"}))),
	}})
	run := h.start("pay", "k", nil)
	r := h.waitStatus(run.ID, store.RunFailed)
	st := r.Steps["charge"]
	if st.Attempts != 1 || !strings.Contains(st.Error, "pay.declined.v1") {
		t.Errorf("step %+v, want failed after 1 attempt naming pay.declined.v1", st)
	}
	if got := lookup(r, "last"); got != `{"type":"pay.declined.v1","data":{"reason":"insufficient funds"}}` {
		t.Errorf("the run's last event is %s, want the decline", got)
	}
	if n := rec.count("charge"); n != 1 {
		t.Errorf("the service got %d commands, want 1", n)
	}
}

// A Wait step completes when the event is signalled to the run, or
// published on the bus with the run's key as correlation id; its data
// becomes the step's result.
func TestWait(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := flow.Flow{Name: "pay", Version: 1, Steps: []flow.Step{
		{Name: "invoice", Send: send("invoice.send.v1")},
		{Name: "paid", Wait: &flow.Wait{Type: "payment.confirmed.v1"}},
		{Name: "ship", Send: send("ship.order.v1")},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{
		service("billing", handler("invoice.send.v1", answer(rec, "invoice", "invoice.sent.v1", nil))),
		service("shipping", handler("ship.order.v1", answer(rec, "ship", "ship.shipped.v1", nil))),
	}})
	ctx := context.Background()
	waiting := func(r store.Run) bool { return stepStatus(r, "paid") == store.StepWaiting }

	t.Run("signal", func(t *testing.T) {
		run := h.start("pay", "order-1", nil)
		h.waitRun(run.ID, "the run to wait", waiting)
		// Another type is not what it waits for.
		if _, err := h.co.Signal(ctx, run.ID, baton.Event{Type: "payment.refused.v1"}); baton.ErrorCode(err) != baton.Conflict {
			t.Errorf("signal of a type the run does not wait for: %v, want a Conflict", err)
		}
		got, err := h.co.Signal(ctx, run.ID, baton.Event{Type: "payment.confirmed.v1", Data: json.RawMessage(`{"amount":42}`)})
		if err != nil {
			t.Fatal(err)
		}
		if s := stepStatus(got, "paid"); s != store.StepCompleted {
			t.Errorf("after the signal the step is %q, want completed", s)
		}
		r := h.waitStatus(run.ID, store.RunCompleted)
		if v := lookup(r, "steps.paid.amount"); v != "42" {
			t.Errorf("steps.paid.amount = %q, want 42", v)
		}
		if n := rec.countKey("ship", "order-1"); n != 1 {
			t.Errorf("the step after the wait ran %d times, want once", n)
		}
		if _, err := h.co.Signal(ctx, run.ID, baton.Event{Type: "payment.confirmed.v1"}); baton.ErrorCode(err) != baton.Conflict {
			t.Errorf("signal to a completed run: %v, want a Conflict", err)
		}
	})

	t.Run("published", func(t *testing.T) {
		run := h.start("pay", "order-2", nil)
		other := h.start("pay", "order-3", nil)
		h.waitRun(run.ID, "the run to wait", waiting)
		h.waitRun(other.ID, "the other run to wait", waiting)
		err := h.rt.Publish(ctx, baton.Event{Type: "payment.confirmed.v1", CorrelationID: "order-2",
			DataContentType: "application/json", Data: json.RawMessage(`{"amount":7}`)})
		if err != nil {
			t.Fatal(err)
		}
		r := h.waitStatus(run.ID, store.RunCompleted)
		if v := lookup(r, "steps.paid.amount"); v != "7" {
			t.Errorf("steps.paid.amount = %q, want 7", v)
		}
		if s := stepStatus(h.run(other.ID), "paid"); s != store.StepWaiting {
			t.Errorf("the run with another key is %q, want still waiting", s)
		}
	})
}

// A Wait with a timeout fails when the event does not come.
func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	f := flow.Flow{Name: "pay", Version: 1, Steps: []flow.Step{
		{Name: "paid", Wait: &flow.Wait{Type: "payment.confirmed.v1"}, Timeout: flow.Duration(100 * time.Millisecond)},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}})
	run := h.start("pay", "order-1", nil)
	r := h.waitStatus(run.ID, store.RunFailed)
	if st := r.Steps["paid"]; !strings.Contains(st.Error, "no payment.confirmed.v1 within 100ms") {
		t.Errorf("step error %q, want \"no payment.confirmed.v1 within 100ms\"", st.Error)
	}
	if _, err := h.co.Signal(context.Background(), run.ID, baton.Event{Type: "payment.confirmed.v1"}); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("signal after the timeout: %v, want a Conflict", err)
	}
}

// HTTP steps: calls of one session share cookies and headers, another
// session's do not; the response is mapped into the run's variables.
func TestHTTPSessions(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: r.URL.Query().Get("user"), Path: "/"})
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"ok":true}`)
		case "/whoami":
			user := ""
			if c, err := r.Cookie("sid"); err == nil {
				user = c.Value
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"user": user, "agent": r.Header.Get("X-Agent")})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	who := func(name, session string) []flow.Step {
		return []flow.Step{{Name: name, HTTP: &flow.HTTPCall{URL: srv.URL + "/whoami", Session: session,
			Map: map[string]string{session + "_user": "body.user", session + "_agent": "body.agent"}}}}
	}
	f := flow.Flow{Name: "web", Version: 1, Steps: []flow.Step{
		{Name: "login_a", HTTP: &flow.HTTPCall{URL: srv.URL + "/login?user={{input.a}}", Session: "a", Headers: map[string]string{"X-Agent": "agent-a"}}},
		{Name: "login_b", HTTP: &flow.HTTPCall{URL: srv.URL + "/login?user={{input.b}}", Session: "b"}},
		{Name: "who", Parallel: &flow.Parallel{Branches: [][]flow.Step{who("who_a", "a"), who("who_b", "b")}}},
	}}
	h := launch(t, setup{flows: []flow.Flow{f}})
	runs := []store.Run{
		h.start("web", "w1", map[string]string{"a": "alice", "b": "bob"}),
		h.start("web", "w2", map[string]string{"a": "carol", "b": "dave"}),
	}
	want := [][4]string{{`"alice"`, `"agent-a"`, `"bob"`, `""`}, {`"carol"`, `"agent-a"`, `"dave"`, `""`}}
	for i, run := range runs {
		r := h.waitStatus(run.ID, store.RunCompleted)
		got := [4]string{lookup(r, "vars.a_user"), lookup(r, "vars.a_agent"), lookup(r, "vars.b_user"), lookup(r, "vars.b_agent")}
		if got != want[i] {
			t.Errorf("run %s: vars a_user, a_agent, b_user, b_agent = %v, want %v", run.Key, got, want[i])
		}
		if got := lookup(r, "steps.who_a.status"); got != "200" {
			t.Errorf("steps.who_a.status = %q, want 200", got)
		}
	}
}

// HTTP steps: a 5xx is retried per the step's policy; a 404 fails the step
// at once.
func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	var flaky, missing atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky":
			if flaky.Add(1) == 1 {
				http.Error(w, "try later", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"temperature":21.5}`)
		default:
			missing.Add(1)
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	retry := &baton.RetryPolicy{MaxAttempts: 3, Base: 10 * time.Millisecond}
	h := launch(t, setup{flows: []flow.Flow{
		{Name: "flaky", Version: 1, Steps: []flow.Step{{Name: "read", Retry: retry,
			HTTP: &flow.HTTPCall{URL: srv.URL + "/flaky", Map: map[string]string{"temp": "body.temperature"}}}}},
		{Name: "missing", Version: 1, Steps: []flow.Step{{Name: "read", Retry: retry, HTTP: &flow.HTTPCall{URL: srv.URL + "/gone"}}}},
	}})

	t.Run("500 then 200", func(t *testing.T) {
		run := h.start("flaky", "k", nil)
		r := h.waitStatus(run.ID, store.RunCompleted)
		if st := r.Steps["read"]; st.Attempts != 2 {
			t.Errorf("step %+v, want 2 attempts", st)
		}
		if got := lookup(r, "vars.temp"); got != "21.5" {
			t.Errorf("vars.temp = %q, want 21.5", got)
		}
		if n := flaky.Load(); n != 2 {
			t.Errorf("the server got %d calls, want 2", n)
		}
	})
	t.Run("404", func(t *testing.T) {
		run := h.start("missing", "k", nil)
		r := h.waitStatus(run.ID, store.RunFailed)
		if st := r.Steps["read"]; st.Attempts != 1 || !strings.Contains(st.Error, "status 404") {
			t.Errorf("step %+v, want failed after 1 attempt with status 404", st)
		}
		if n := missing.Load(); n != 1 {
			t.Errorf("the server got %d calls, want 1", n)
		}
	})
}

// Starting a key twice returns the first run and sends nothing more; a key
// is per flow.
func TestIdempotentStart(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	one := func(name string) flow.Flow {
		return flow.Flow{Name: name, Version: 1, Steps: []flow.Step{{Name: "first", Send: send("once.first.v1")}}}
	}
	// One worker: the service takes its commands in the order sent.
	h := launch(t, setup{flows: []flow.Flow{one("f1"), one("f2")}, workers: 1, services: []baton.Service{
		service("once", handler("once.first.v1", answer(rec, "first", "once.done.v1", nil))),
	}})
	ctx := context.Background()
	first := h.start("f1", "k", map[string]int{"n": 1})
	again, created, err := h.co.StartRun(ctx, flow.StartRequest{Flow: "f1", Key: "k", Input: json.RawMessage(`{"n":2}`)})
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("second start: run %s created %v err %v; want run %s, created false", again.ID, created, err, first.ID)
	}
	if string(again.Input) != `{"n":1}` {
		t.Errorf("second start returned input %s, want the first run's", again.Input)
	}

	// Concurrent starts of one key: one run.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	made := make([]bool, 8)
	for i := range ids {
		wg.Go(func() {
			r, c, err := h.co.StartRun(ctx, flow.StartRequest{Flow: "f1", Key: "k2"})
			if err != nil {
				t.Error(err)
			}
			ids[i], made[i] = r.ID, c
		})
	}
	wg.Wait()
	creations := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Errorf("concurrent starts of one key returned runs %s and %s", ids[0], ids[i])
		}
		if made[i] {
			creations++
		}
	}
	if creations != 1 {
		t.Errorf("concurrent starts of one key created %d runs, want 1", creations)
	}

	// The same key in another flow is another run.
	other := h.start("f2", "k", nil)
	if other.ID == first.ID {
		t.Errorf("flows f1 and f2 share run %s for key k", other.ID)
	}
	for _, id := range []string{first.ID, ids[0], other.ID} {
		h.waitStatus(id, store.RunCompleted)
	}
	// other's command was sent last: once it is handled, so is anything a
	// repeated start could have sent.
	if n := rec.countKey("first", "k"); n != 2 {
		t.Errorf("key k's first step was delivered %d times, want 2 (once for f1, once for f2)", n)
	}
	if n := rec.countKey("first", "k2"); n != 1 {
		t.Errorf("key k2's first step was delivered %d times, want once", n)
	}
	runs, err := h.co.Runs(ctx, store.RunQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Errorf("%d runs stored, want 3", len(runs))
	}
}

// A start whose input fails the flow's schema, or the user's Validate hook,
// is refused as Invalid, stores nothing, and alerts the notifier; finished
// runs are told to it too.
func TestStartValidation(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	f := flow.Flow{Name: "order", Version: 1,
		InputSchema: json.RawMessage(`{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string","minLength":1}}}`),
		Steps:       []flow.Step{{Name: "charge", Send: send("order.charge.v1", "order.declined.v1")}},
	}
	h := launch(t, setup{flows: []flow.Flow{f}, services: []baton.Service{
		service("pay", handler("order.charge.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			rec.add("charge", e)
			if e.CorrelationID == "declined" {
				return reply("order.declined.v1", e, nil), nil
			}
			return reply("order.charged.v1", e, nil), nil
		})),
	}, validate: func(ctx context.Context, req flow.StartRequest) error {
		if req.Key == "blocked" {
			return errors.New("customer blocked")
		}
		return nil
	}})
	ctx := context.Background()
	invalid := func(key, input, wantMsg string) {
		t.Helper()
		_, _, err := h.co.StartRun(ctx, flow.StartRequest{Flow: "order", Key: key, Input: json.RawMessage(input)})
		if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(fmt.Sprint(err), wantMsg) {
			t.Errorf("start %s with %s: %v; want an Invalid error saying %q", key, input, err, wantMsg)
		}
		var found bool
		for _, n := range h.notes.all() {
			if n.Kind == flow.InputInvalid && n.Request != nil && n.Request.Key == key {
				found = strings.Contains(n.Message, wantMsg)
			}
		}
		if !found {
			t.Errorf("start %s: the notifier heard no %s saying %q: %+v", key, flow.InputInvalid, wantMsg, h.notes.all())
		}
	}
	invalid("bad-type", `{"order_id": 5}`, "schema")
	invalid("missing", `{"customer": "x"}`, "schema")
	invalid("not-json", `{"order_id":`, "not valid JSON")
	invalid("blocked", `{"order_id": "o-1"}`, "customer blocked")
	if _, _, err := h.co.StartRun(ctx, flow.StartRequest{Flow: "nope", Key: "k"}); baton.ErrorCode(err) != baton.NotFound {
		t.Errorf("start of an unknown flow: %v, want NotFound", err)
	}
	runs, err := h.co.Runs(ctx, store.RunQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 || rec.count("charge") != 0 {
		t.Fatalf("refused starts stored %d runs and sent %d commands, want none", len(runs), rec.count("charge"))
	}

	ok := h.start("order", "fine", map[string]string{"order_id": "o-2"})
	declined := h.start("order", "declined", map[string]string{"order_id": "o-3"})
	h.waitStatus(ok.ID, store.RunCompleted)
	h.waitStatus(declined.ID, store.RunFailed)
	h.waitNotes(ok.ID, flow.RunCompleted)
	h.waitNotes(declined.ID, flow.RunFailed)
}

// Cancelling a run waiting on a slow service compensates the steps done,
// ends it cancelled, and ignores the slow service's late reply; cancelling a
// finished run is a Conflict.
func TestCancel(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	slow := newGate()
	f := flow.Flow{Name: "trip", Version: 1, Steps: []flow.Step{
		{Name: "a", Send: send("trip.a.v1"), Compensate: &flow.Step{Name: "undo_a", Send: send("trip.undo-a.v1")}},
		{Name: "b", Send: send("trip.b.v1"), Compensate: &flow.Step{Name: "undo_b", Send: send("trip.undo-b.v1")}},
		{Name: "c", Send: send("trip.c.v1")},
	}}
	h := launch(t, setup{flows: []flow.Flow{f, probeFlow}, coordinator: 1, gates: []*gate{slow}, services: []baton.Service{
		service("fast", handler("trip.a.v1", answer(rec, "a", "trip.a-done.v1", nil)),
			handler("trip.c.v1", answer(rec, "c", "trip.c-done.v1", nil)),
			handler("trip.undo-a.v1", answer(rec, "undo_a", "trip.a-undone.v1", nil)),
			handler("trip.undo-b.v1", answer(rec, "undo_b", "trip.b-undone.v1", nil))),
		service("slow", handler("trip.b.v1", func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			rec.add("b", e)
			if e.CorrelationID == "trip-1" {
				slow.wait()
			}
			return reply("trip.b-done.v1", e, nil), nil
		})),
		probeService(rec),
	}})
	ctx := context.Background()
	run := h.start("trip", "trip-1", nil)
	h.waitRun(run.ID, "step b under way", func(r store.Run) bool { return stepStatus(r, "b") == store.StepRunning })
	eventually(t, "the slow service to have b's command", func() bool { return rec.count("b") == 1 })

	if _, err := h.co.Cancel(ctx, run.ID, "the customer changed their mind"); err != nil {
		t.Fatal(err)
	}
	r := h.waitStatus(run.ID, store.RunCancelled)
	if got := rec.names(); !slices.Equal(got, []string{"a", "b", "undo_a"}) {
		t.Errorf("commands handled %v, want [a b undo_a]: a compensated, b abandoned", got)
	}
	if s := stepStatus(r, "a"); s != store.StepCompensated {
		t.Errorf("step a %q, want compensated", s)
	}
	if s := stepStatus(r, "b"); s != store.StepSkipped {
		t.Errorf("step b %q, want skipped", s)
	}
	if r.Error != "the customer changed their mind" {
		t.Errorf("run error %q, want the reason", r.Error)
	}
	h.waitNotes(run.ID, flow.RunCancelled)

	// The slow service answers now; the coordinator takes that reply
	// before the probe's.
	slow.open()
	h.handled(3) // a, b, undo_a
	h.drain("probe", "probe-1")
	r2 := h.run(run.ID)
	if r2.Rev != r.Rev || r2.Status != store.RunCancelled || stepStatus(r2, "b") != store.StepSkipped {
		t.Errorf("the late reply changed the cancelled run: %s", describe(r2))
	}
	if n := rec.count("c"); n != 0 {
		t.Errorf("the step after the cancelled one ran %d times", n)
	}

	for _, id := range []string{run.ID} {
		if _, err := h.co.Cancel(ctx, id, ""); baton.ErrorCode(err) != baton.Conflict {
			t.Errorf("cancel of a finished run: %v, want a Conflict", err)
		}
	}
	done := h.start("probe", "probe-2", nil)
	h.waitStatus(done.ID, store.RunCompleted)
	if _, err := h.co.Cancel(ctx, done.ID, ""); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("cancel of a completed run: %v, want a Conflict", err)
	}
	if _, err := h.co.Cancel(ctx, "r-nope", ""); baton.ErrorCode(err) != baton.NotFound {
		t.Errorf("cancel of an unknown run: %v, want NotFound", err)
	}
}

// A run already compensating cannot be cancelled: the compensation under
// way finishes, the OnFailure steps run, and the run ends failed.
func TestCancelWhileCompensating(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	slow := newGate()
	f := flow.Flow{Name: "trip", Version: 1,
		Steps: []flow.Step{
			{Name: "a", Send: send("trip.a.v1"), Compensate: &flow.Step{Name: "undo_a", Send: send("trip.undo-a.v1")}},
			{Name: "b", Send: send("trip.b.v1", "trip.b-refused.v1")},
		},
		OnFailure: []flow.Step{{Name: "alert", Send: send("trip.alert.v1")}},
	}
	h := launch(t, setup{flows: []flow.Flow{f}, gates: []*gate{slow}, services: []baton.Service{
		service("trips", handler("trip.a.v1", answer(rec, "a", "trip.a-done.v1", nil)),
			handler("trip.b.v1", answer(rec, "b", "trip.b-refused.v1", nil)),
			handler("trip.alert.v1", answer(rec, "alert", "trip.alerted.v1", nil)),
			handler("trip.undo-a.v1", gated(rec, slow, "undo_a", "trip.a-undone.v1", nil))),
	}})
	ctx := context.Background()
	run := h.start("trip", "k", nil)
	h.waitRun(run.ID, "the run to compensate", func(r store.Run) bool { return r.Status == store.RunCompensating })
	eventually(t, "the compensation to reach its service", func() bool { return rec.count("undo_a") == 1 })
	if _, err := h.co.Cancel(ctx, run.ID, ""); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("cancel of a compensating run: %v, want a Conflict", err)
	}
	slow.open()
	r := h.waitStatus(run.ID, store.RunFailed)
	if s := stepStatus(r, "a/compensate/undo_a"); s != store.StepCompleted {
		t.Errorf("the compensation is %q, want completed", s)
	}
	if got := rec.names(); !slices.Equal(got, []string{"a", "b", "undo_a", "alert"}) {
		t.Errorf("commands handled %v, want [a b undo_a alert]", got)
	}
	if !strings.Contains(r.Error, "step b") {
		t.Errorf("run error %q, want step b's failure", r.Error)
	}
}
