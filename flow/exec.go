package flow

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/internal/jsonx"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/otel/trace"
)

// exec is one transition of a run: what happened (a reply, a timer, a
// signal) is applied to the step states, then advance walks the definition
// from the top, starting whatever is now due. What the transition sends,
// the timers it sets, the HTTP calls it makes and the notifications it
// gives are collected and acted on once the run is saved.
type exec struct {
	c   *Coordinator
	run *store.Run
	f   *Flow
	now time.Time

	changed   bool
	ended     bool // the transition ended the run
	journaled bool // and its end was journaled with the save
	out       []command
	calls     []pendingCall
	notes     []Notification
	// outcomes are the step outcomes of the transition, for metrics.
	outcomes []string
	// spans are those of the steps the transition sends (see trace.go),
	// ended once it is saved.
	spans []trace.Span
}

// command is a message a transition sends, with the step it is for.
type command struct {
	store.Outbound
	path string
}

type pendingCall struct {
	path    string
	attempt int
	call    HTTPCall
	hosts   []string // the flow's Hosts
	data    json.RawMessage
	timeout time.Duration
	// the run's trace context, which the call's span joins
	traceParent, traceState string
}

// status of a step or a sequence as the walk sees it.
type status int

const (
	pending status = iota // started or under way: wait
	done
	failed
)

const (
	defaultTimeout  = 30 * time.Second
	cancelledMarker = "cancelled"
)

func (c *Coordinator) exec(run *store.Run, f *Flow, now time.Time) *exec {
	if run.Steps == nil {
		run.Steps = map[string]*store.StepState{}
	}
	return &exec{c: c, run: run, f: f, now: now}
}

// sending returns the commands to send, less those of steps the same
// transition abandoned (the losing branches of a first-wins join).
func (x *exec) sending() []store.Outbound {
	out := make([]store.Outbound, 0, len(x.out))
	for _, c := range x.out {
		if st := x.run.Steps[c.path]; st != nil && st.Status == store.StepSkipped {
			continue
		}
		out = append(out, c.Outbound)
	}
	return out
}

// commandID names the event a step's attempt sends: derived from the run,
// the step and the attempt, so that a transition sent again after a crash
// sends the same id, which the service's inbox skips. Nothing parses it:
// the reply finds its step by the command's metadata, which the service's
// runtime copies onto it (see stepMeta).
func commandID(runID, path string, attempt int) string {
	return runID + "/" + path + "#" + strconv.Itoa(attempt)
}

// The coordinator's metadata on a step's command, besides bus.MetaReplyTo
// and bus.MetaRun; a reply comes back with all of them but MetaReplyTo.
const (
	metaStep    = "step"    // the step's path in the flow
	metaAttempt = "attempt" // the attempt of the step, from 1
)

// stepMeta routes a step's command: the reply goes to group, and says which
// run, step and attempt it answers.
func stepMeta(group, runID, path string, attempt int) map[string]string {
	return map[string]string{bus.MetaReplyTo: group, bus.MetaRun: runID, metaStep: path, metaAttempt: strconv.Itoa(attempt)}
}

// replyTo reads the run, step and attempt a reply answers from its
// metadata; ok is false for a message that is not a reply.
func replyTo(meta map[string]string) (runID, path string, attempt int, ok bool) {
	runID, path = meta[bus.MetaRun], meta[metaStep]
	n, err := strconv.Atoi(meta[metaAttempt])
	if runID == "" || path == "" || err != nil {
		return "", "", 0, false
	}
	return runID, path, n, true
}

// advance walks the run, finishes it when its steps are over, and sets
// when it must wake next.
func (x *exec) advance() {
	defer x.setWake()
	switch x.run.Status {
	case store.RunRunning:
		switch x.seq(x.f.Steps, "") {
		case done:
			x.finish(store.RunCompleted)
		case failed:
			x.run.Status = store.RunCompensating
			x.changed = true
			x.compensate()
		}
	case store.RunCompensating:
		x.compensate()
	}
}

// compensate runs the compensations of the completed steps, in reverse
// order, one at a time, then the flow's OnFailure steps.
func (x *exec) compensate() {
	var completed []struct {
		path string
		s    *Step
	}
	x.walk(x.f.Steps, "", func(s *Step, path string) {
		if st := x.run.Steps[path]; s.Compensate != nil && st != nil && (st.Status == store.StepCompleted || st.Status == store.StepCompensated) {
			completed = append(completed, struct {
				path string
				s    *Step
			}{path, s})
		}
	})
	for i := len(completed) - 1; i >= 0; i-- {
		c := completed[i]
		switch x.step(c.s.Compensate, c.path+"/compensate/") {
		case pending:
			return
		case failed:
			// The step stays completed: it was not undone.
			if note := "; compensation of " + c.path + " failed"; !strings.Contains(x.run.Error, note) {
				x.run.Error += note
				x.changed = true
			}
		case done:
			if st := x.run.Steps[c.path]; st.Status == store.StepCompleted {
				st.Status = store.StepCompensated
				x.changed = true
				x.outcomes = append(x.outcomes, "compensated")
			}
		}
	}
	if x.cancelled() {
		x.finish(store.RunCancelled)
		return
	}
	if x.seq(x.f.OnFailure, "on_failure/") == pending {
		return
	}
	x.finish(store.RunFailed)
}

func (x *exec) setWake() {
	var wake time.Time
	if !x.run.Status.Terminal() {
		for _, st := range x.run.Steps {
			if (st.Status == store.StepRunning || st.Status == store.StepWaiting) && !st.Due.IsZero() &&
				(wake.IsZero() || st.Due.Before(wake)) {
				wake = st.Due
			}
		}
	}
	if !wake.Equal(x.run.Wake) {
		x.run.Wake = wake
		x.changed = true
	}
}

func (x *exec) cancelled() bool {
	v, ok := Lookup(x.run.Data, cancelledMarker)
	return ok && string(v) == "true"
}

func (x *exec) finish(s store.RunStatus) {
	x.run.Status = s
	x.changed, x.ended = true, true
	kind := RunFailed
	switch s {
	case store.RunCompleted:
		kind = RunCompleted
		if v, ok := Lookup(x.run.Data, "last.data"); ok {
			x.run.Result = v
		}
	case store.RunCancelled:
		kind = RunCancelled
	}
	x.notes = append(x.notes, Notification{Kind: kind, Time: x.now, Message: x.run.Error})
}

// walk calls fn for every step of a sequence that has started, depth first.
func (x *exec) walk(steps []Step, prefix string, fn func(*Step, string)) {
	for i := range steps {
		s := &steps[i]
		path := prefix + s.Name
		st := x.run.Steps[path]
		if st == nil {
			continue
		}
		fn(s, path)
		if s.Parallel != nil {
			for b, br := range s.Parallel.Branches {
				x.walk(br, fmt.Sprintf("%s/%d/", path, b), fn)
			}
		}
		if s.Choice != nil && st.Branch > 0 {
			x.walk(s.Choice[st.Branch-1].Steps, fmt.Sprintf("%s/%d/", path, st.Branch-1), fn)
		}
	}
}

// seq advances a sequence.
func (x *exec) seq(steps []Step, prefix string) status {
	for i := range steps {
		if st := x.step(&steps[i], prefix); st != done {
			return st
		}
	}
	return done
}

// step advances one step, starting it if it has not started.
func (x *exec) step(s *Step, prefix string) status {
	path := prefix + s.Name
	st := x.run.Steps[path]
	if st == nil {
		st = x.begin(s, path)
	}
	switch st.Status {
	case store.StepCompleted, store.StepSkipped, store.StepCompensated:
		return done
	case store.StepFailed:
		return failed
	}
	switch {
	case s.Parallel != nil:
		return x.parallel(s, path, st)
	case s.Choice != nil:
		return x.choice(s, path, st)
	}
	return pending
}

func (x *exec) begin(s *Step, path string) *store.StepState {
	st := &store.StepState{Status: store.StepRunning, Started: x.now}
	x.run.Steps[path] = st
	x.changed = true
	switch {
	case s.Choice != nil:
		for i, b := range s.Choice {
			ok := b.When == nil
			if !ok {
				var err error
				if ok, err = b.When.Holds(x.run.Data); err != nil {
					x.fail(path, st, "condition: "+err.Error())
					return st
				}
			}
			if ok {
				st.Branch = i + 1
				return st
			}
		}
		x.complete(s, path, st, nil) // no branch applies
	case s.Parallel != nil:
	case s.Notify != nil:
		msg, err := Render(s.Notify.Message, x.run.Data)
		if err != nil {
			x.fail(path, st, "notify: "+err.Error())
			return st
		}
		x.notes = append(x.notes, Notification{Kind: Alert, Time: x.now, Message: msg})
		x.complete(s, path, st, nil)
	case s.Fail != "":
		msg, err := Render(s.Fail, x.run.Data)
		if err != nil {
			msg = s.Fail
		}
		x.fail(path, st, msg)
	case s.Wait != nil:
		st.Status = store.StepWaiting
		st.Attempts = 1
		if s.Timeout > 0 {
			st.Due = x.now.Add(time.Duration(s.Timeout))
		}
	case s.Sleep > 0:
		st.Attempts = 1
		st.Due = x.now.Add(time.Duration(s.Sleep))
	case s.Until != "":
		at, err := x.until(s.Until)
		if err != nil {
			x.fail(path, st, err.Error())
			return st
		}
		st.Attempts = 1
		if !at.After(x.now) {
			x.complete(s, path, st, nil)
			return st
		}
		st.Due = at
	default:
		x.attempt(s, path, st)
	}
	return st
}

// until reads an Until step's time.
func (x *exec) until(tmpl string) (time.Time, error) {
	v, err := Render(tmpl, x.run.Data)
	if err != nil {
		return time.Time{}, fmt.Errorf("until: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("until %q: not an RFC 3339 time", v)
	}
	return at, nil
}

// attempt starts the next attempt of a Send or HTTP step.
func (x *exec) attempt(s *Step, path string, st *store.StepState) {
	st.Attempts++
	x.changed = true
	timeout := time.Duration(s.Timeout)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	st.Due, st.Backoff = x.now.Add(timeout), false
	if s.HTTP != nil {
		x.calls = append(x.calls, pendingCall{path: path, attempt: st.Attempts, call: *s.HTTP, hosts: x.f.Hosts, data: x.run.Data, timeout: timeout,
			traceParent: x.run.TraceParent, traceState: x.run.TraceState})
		return
	}
	msg, err := x.command(s, path, st.Attempts)
	if err != nil {
		x.fail(path, st, err.Error())
		return
	}
	x.out = append(x.out, command{Outbound: msg, path: path})
}

// command builds the event a Send step's attempt sends.
func (x *exec) command(s *Step, path string, attempt int) (store.Outbound, error) {
	typ := s.Send.Type
	if typ == "$last" {
		v, ok := Lookup(x.run.Data, "last.type")
		if !ok || json.Unmarshal(v, &typ) != nil {
			return store.Outbound{}, fmt.Errorf("send $last: the run has received no event yet")
		}
	}
	group, ok := x.c.routes[typ]
	if !ok {
		return store.Outbound{}, fmt.Errorf("send %s: no service handles it (tell the coordinator which services there are)", typ)
	}
	path0 := s.Send.Data
	switch path0 {
	case "":
		path0 = "input"
	case "last":
		path0 = "last.data"
	}
	data, ok := Lookup(x.run.Data, path0)
	if !ok {
		return store.Outbound{}, fmt.Errorf("send %s: no data at %q", typ, s.Send.Data)
	}
	e := baton.Event{
		ID: commandID(x.run.ID, path, attempt), Source: "baton.flow/" + x.f.Name, SpecVersion: baton.SpecVersion,
		Type: typ, Subject: x.run.Key, Time: x.now, DataContentType: "application/json",
		CorrelationID: x.run.Key, CausationID: x.run.ID, Data: data,
	}
	x.c.tracer.step(x, path, attempt, &e)
	if err := event.Validate(e); err != nil {
		return store.Outbound{}, fmt.Errorf("send %s: %w", typ, err)
	}
	if err := event.CheckData(e); err != nil {
		return store.Outbound{}, fmt.Errorf("send %s: %w", typ, err)
	}
	// bus.Replay recognises a step's command by its metadata (the run, the
	// group to reply to), and refuses it once the run has ended.
	m := bus.Message{Event: e, Meta: stepMeta(x.c.cfg.Group, x.run.ID, path, attempt)}
	return store.Outbound{Group: group, Type: typ, ID: e.ID, Body: bus.AppendRecord(make([]byte, 0, bus.RecordSize(m)), m)}, nil
}

func (x *exec) parallel(s *Step, path string, st *store.StepState) status {
	n, finished, broken := len(s.Parallel.Branches), 0, 0
	for b, br := range s.Parallel.Branches {
		switch x.seq(br, fmt.Sprintf("%s/%d/", path, b)) {
		case done:
			finished++
		case failed:
			broken++
		}
	}
	first := s.Parallel.Join == "first"
	switch {
	case first && finished > 0, !first && finished == n:
		x.skipUnder(path + "/")
		x.complete(s, path, st, nil)
		return done
	case first && broken == n, !first && broken > 0:
		x.skipUnder(path + "/")
		x.fail(path, st, fmt.Sprintf("%d of %d branches failed", broken, n))
		return failed
	}
	return pending
}

// skipUnder abandons the steps under way below prefix: their replies and
// timers become stale.
func (x *exec) skipUnder(prefix string) {
	for p, st := range x.run.Steps {
		if strings.HasPrefix(p, prefix) && (st.Status == store.StepRunning || st.Status == store.StepWaiting) {
			st.Status, st.Ended, st.Due, st.Backoff = store.StepSkipped, x.now, time.Time{}, false
			x.changed = true
		}
	}
}

func (x *exec) choice(s *Step, path string, st *store.StepState) status {
	switch x.seq(s.Choice[st.Branch-1].Steps, fmt.Sprintf("%s/%d/", path, st.Branch-1)) {
	case done:
		x.complete(s, path, st, nil)
		return done
	case failed:
		x.fail(path, st, fmt.Sprintf("branch %d failed", st.Branch))
		return failed
	}
	return pending
}

func (x *exec) complete(s *Step, path string, st *store.StepState, result json.RawMessage) {
	st.Status, st.Ended, st.Error = store.StepCompleted, x.now, ""
	st.Due, st.Backoff = time.Time{}, false
	x.changed = true
	x.outcomes = append(x.outcomes, "completed")
	if result != nil {
		x.set("steps."+s.Name, result)
	}
}

func (x *exec) fail(path string, st *store.StepState, msg string) {
	st.Status, st.Ended, st.Error = store.StepFailed, x.now, msg
	st.Due, st.Backoff = time.Time{}, false
	x.changed = true
	x.outcomes = append(x.outcomes, "failed")
	if x.run.Error == "" && !strings.HasPrefix(path, "on_failure/") && !strings.Contains(path, "/compensate/") {
		x.run.Error = "step " + path + ": " + msg
	}
}

// attemptFailed retries the step if its policy allows, or fails it.
func (x *exec) attemptFailed(s *Step, path string, st *store.StepState, msg string) {
	policy := baton.RetryPolicy{MaxAttempts: 1}
	switch {
	case s.Retry != nil:
		policy = s.Retry.OrDefault()
	case s.HTTP != nil:
		policy = DefaultHTTPRetry
	}
	if st.Attempts >= policy.MaxAttempts {
		if st.Attempts > 1 {
			msg = fmt.Sprintf("%s (after %d attempts)", msg, st.Attempts)
		}
		x.fail(path, st, msg)
		return
	}
	st.Error = msg
	st.Due, st.Backoff = x.now.Add(policy.Backoff(st.Attempts, rand.Float64)), true
	x.changed = true
	x.outcomes = append(x.outcomes, "retried")
}

func (x *exec) set(path string, v json.RawMessage) {
	d, err := SetPath(x.run.Data, path, v)
	if err == nil {
		x.run.Data = d
	}
}

func (x *exec) setLast(e baton.Event) {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	last := make([]byte, 0, len(e.Type)+len(data)+24)
	last = append(jsonx.AppendString(append(last, `{"type":`...), e.Type), `,"data":`...)
	x.set("last", append(append(last, data...), '}'))
}

// find returns the definition of the step at path.
func (x *exec) find(path string) *Step {
	var found *Step
	x.walk(x.f.Steps, "", func(s *Step, p string) {
		if p == path {
			found = s
		}
		if s.Compensate != nil && path == p+"/compensate/"+s.Compensate.Name {
			found = s.Compensate
		}
	})
	if found == nil {
		x.walk(x.f.OnFailure, "on_failure/", func(s *Step, p string) {
			if p == path {
				found = s
			}
		})
	}
	return found
}

// current returns the step at path if its attempt is the one under way.
func (x *exec) current(path string, attempt int) (*Step, *store.StepState) {
	st := x.run.Steps[path]
	if st == nil || (st.Status != store.StepRunning && st.Status != store.StepWaiting) || st.Attempts != attempt || x.run.Status.Terminal() {
		return nil, nil
	}
	return x.find(path), st
}

// reply applies a service's answer to a Send step.
func (x *exec) reply(path string, attempt int, e baton.Event) {
	s, st := x.current(path, attempt)
	if s == nil || s.Send == nil {
		return // stale: a late answer to an abandoned attempt
	}
	x.setLast(e)
	switch {
	case e.Type == bus.TypeStepFailed:
		var f bus.StepFailed
		json.Unmarshal(e.Data, &f)
		x.attemptFailed(s, path, st, fmt.Sprintf("service %s gave up: %s", f.Group, f.Reason))
	case slices.Contains(s.Send.FailOn, e.Type):
		x.set("steps."+s.Name, e.Data)
		x.fail(path, st, "the service answered "+e.Type)
	default:
		x.complete(s, path, st, e.Data)
	}
}

// tick applies what has come due: timeouts, the ends of sleeps, retries.
func (x *exec) tick() {
	for path, st := range x.run.Steps {
		if (st.Status != store.StepRunning && st.Status != store.StepWaiting) || st.Due.IsZero() || st.Due.After(x.now) {
			continue
		}
		s := x.find(path)
		if s == nil {
			continue
		}
		x.changed = true
		switch {
		case st.Backoff:
			x.attempt(s, path, st)
		case s.Sleep > 0, s.Until != "":
			x.complete(s, path, st, nil)
		case s.Wait != nil:
			x.fail(path, st, fmt.Sprintf("no %s within %v", s.Wait.Type, time.Duration(s.Timeout)))
		default:
			timeout := time.Duration(s.Timeout)
			if timeout <= 0 {
				timeout = defaultTimeout
			}
			x.attemptFailed(s, path, st, fmt.Sprintf("no answer within %v", timeout))
		}
	}
}

// signal completes the steps waiting for e's type.
func (x *exec) signal(e baton.Event) bool {
	if x.run.Status.Terminal() {
		return false
	}
	found := false
	for path, st := range x.run.Steps {
		if st.Status != store.StepWaiting {
			continue
		}
		if s := x.find(path); s != nil && s.Wait != nil && s.Wait.Type == e.Type {
			x.setLast(e)
			data := e.Data
			if len(data) == 0 {
				data = json.RawMessage("null")
			}
			x.complete(s, path, st, data)
			found = true
		}
	}
	return found
}

// httpDone applies an HTTP step's outcome.
func (x *exec) httpDone(path string, attempt int, result json.RawMessage, vars map[string]json.RawMessage, err error) {
	s, st := x.current(path, attempt)
	if s == nil || s.HTTP == nil {
		return
	}
	if err != nil {
		if baton.IsPermanent(err) {
			x.fail(path, st, err.Error())
			return
		}
		x.attemptFailed(s, path, st, err.Error())
		return
	}
	for k, v := range vars {
		x.set("vars."+k, v)
	}
	x.complete(s, path, st, result)
}

// cancel abandons the steps under way and starts compensation; the run
// ends cancelled.
func (x *exec) cancel(reason string) {
	x.skipUnder("")
	x.set(cancelledMarker, json.RawMessage("true"))
	x.run.Error = reason
	x.run.Status = store.RunCompensating
	x.changed = true
}

// resume restarts the HTTP calls that were in flight when a coordinator
// stopped. Timeouts, sleeps and retries need nothing: they are in the run.
func (x *exec) resume() {
	for path, st := range x.run.Steps {
		if st.Status != store.StepRunning || st.Backoff {
			continue
		}
		if s := x.find(path); s != nil && s.HTTP != nil {
			timeout := time.Duration(s.Timeout)
			if timeout <= 0 {
				timeout = defaultTimeout
			}
			x.calls = append(x.calls, pendingCall{path: path, attempt: st.Attempts, call: *s.HTTP, hosts: x.f.Hosts, data: x.run.Data, timeout: timeout,
				traceParent: x.run.TraceParent, traceState: x.run.TraceState})
		}
	}
}
