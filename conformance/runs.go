package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

// sameMilli compares two times at the precision every backend keeps.
func sameMilli(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// sameJSON reports whether two JSON documents are the same value; a backend
// may compact or re-encode what it stores. Absent matches only absent.
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// expectCode fails unless err carries code.
func expectCode(t *testing.T, what string, err error, code baton.Code) {
	t.Helper()
	if got := baton.ErrorCode(err); got != code {
		t.Errorf("%s: expected an error with code %q; got %v (code %q)", what, code, err, got)
	}
}

// expectNotFound fails unless err is baton.ErrNotFound with its code.
func expectNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, baton.ErrNotFound) {
		t.Errorf("%s: expected an error that is baton.ErrNotFound; got %v", what, err)
		return
	}
	expectCode(t, what, err, baton.NotFound)
}

func stepDiff(name string, want, got *store.StepState) []string {
	if want == nil || got == nil {
		if want != got {
			return []string{fmt.Sprintf("Steps[%q] %v, want %v", name, got, want)}
		}
		return nil
	}
	var d []string
	add := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("Steps[%q].%s %v, want %v", name, field, g, w))
	}
	if got.Status != want.Status {
		add("Status", got.Status, want.Status)
	}
	if got.Attempts != want.Attempts {
		add("Attempts", got.Attempts, want.Attempts)
	}
	if got.Error != want.Error {
		add("Error", got.Error, want.Error)
	}
	if !sameMilli(got.Started, want.Started) {
		add("Started", got.Started, want.Started)
	}
	if !sameMilli(got.Ended, want.Ended) {
		add("Ended", got.Ended, want.Ended)
	}
	if got.Branch != want.Branch {
		add("Branch", got.Branch, want.Branch)
	}
	if !sameMilli(got.Due, want.Due) {
		add("Due", got.Due, want.Due)
	}
	if got.Backoff != want.Backoff {
		add("Backoff", got.Backoff, want.Backoff)
	}
	return d
}

// runDiff says how got differs from want, field by field.
func runDiff(want, got store.Run) string {
	var d []string
	add := func(field string, g, w any) {
		d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w))
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Flow != want.Flow {
		add("Flow", got.Flow, want.Flow)
	}
	if got.Version != want.Version {
		add("Version", got.Version, want.Version)
	}
	if got.Key != want.Key {
		add("Key", got.Key, want.Key)
	}
	if got.Status != want.Status {
		add("Status", got.Status, want.Status)
	}
	if got.Error != want.Error {
		add("Error", got.Error, want.Error)
	}
	if !sameMilli(got.Created, want.Created) {
		add("Created", got.Created, want.Created)
	}
	if !sameMilli(got.Updated, want.Updated) {
		add("Updated", got.Updated, want.Updated)
	}
	if got.Rev != want.Rev {
		add("Rev", got.Rev, want.Rev)
	}
	if !sameMilli(got.Wake, want.Wake) {
		add("Wake", got.Wake, want.Wake)
	}
	if !sameJSON(got.Input, want.Input) {
		add("Input", string(got.Input), string(want.Input))
	}
	if !sameJSON(got.Result, want.Result) {
		add("Result", string(got.Result), string(want.Result))
	}
	if !sameJSON(got.Data, want.Data) {
		add("Data", string(got.Data), string(want.Data))
	}
	names := map[string]bool{}
	for n := range want.Steps {
		names[n] = true
	}
	for n := range got.Steps {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, n := range sorted {
		d = append(d, stepDiff(n, want.Steps[n], got.Steps[n])...)
	}
	return strings.Join(d, "; ")
}

// sampleRun is a run with every field set, steps of every kind included.
func sampleRun(id, flow, key string, at time.Time) store.Run {
	return store.Run{
		ID:      id,
		Flow:    flow,
		Version: 3,
		Key:     key,
		Status:  store.RunRunning,
		Error:   "checks/1/fetch: upstream said 503",
		Created: at,
		Updated: at.Add(1500 * time.Millisecond),
		Wake:    at.Add(6 * time.Second),
		Input:   json.RawMessage(`{ "order": "ORDER-1", "amount": 12.5, "items": [1, 2, 3], "note": "<b>&</b> é \n", "gift": null }`),
		Result:  json.RawMessage(`"partial"`),
		Data:    json.RawMessage(`{"charge": {"id": "ch_1", "captured": true}, "checks": [{"ok": true}, {}]}`),
		Steps: map[string]*store.StepState{
			"charge": {
				Status: store.StepCompleted, Attempts: 2, Started: at.Add(time.Millisecond), Ended: at.Add(251 * time.Millisecond),
			},
			"checks/1/fetch": {
				Status: store.StepFailed, Attempts: 3, Error: "timeout after 5s", Started: at.Add(300 * time.Millisecond), Ended: at.Add(5300 * time.Millisecond),
			},
			"route":   {Status: store.StepCompleted, Branch: 2, Started: at.Add(5301 * time.Millisecond), Ended: at.Add(5302 * time.Millisecond)},
			"approve": {Status: store.StepWaiting, Attempts: 1, Started: at.Add(5400 * time.Millisecond), Due: at.Add(24 * time.Hour)},
			"notify":  {Status: store.StepRunning, Attempts: 2, Error: "refused", Started: at.Add(5500 * time.Millisecond), Due: at.Add(6 * time.Second), Backoff: true},
			"ship":    {Status: store.StepSkipped},
		},
	}
}

func createRun(t *testing.T, st store.Store, r store.Run, out ...store.Outbound) store.Run {
	t.Helper()
	stored, created, err := st.CreateRun(t.Context(), r, out)
	if err != nil {
		t.Fatalf("create run %s (flow %s, key %s): %v", r.ID, r.Flow, r.Key, err)
	}
	if !created {
		t.Fatalf("create run %s (flow %s, key %s): created false for a new key (returned run %s)", r.ID, r.Flow, r.Key, stored.ID)
	}
	return stored
}

func loadRun(t *testing.T, st store.Store, id string) store.Run {
	t.Helper()
	r, err := st.Run(t.Context(), id)
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	return r
}

// checkRun fails unless the stored run with want.ID is want.
func checkRun(t *testing.T, st store.Store, what string, want store.Run) {
	t.Helper()
	if diff := runDiff(want, loadRun(t, st, want.ID)); diff != "" {
		t.Errorf("%s: Run(%s): %s", what, want.ID, diff)
	}
}

// testRunCreate: CreateRun stores a run with Rev 1; Run returns every field.
func testRunCreate(t *testing.T, st store.Store) {
	want := sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now()))
	want.Rev = 7 // the store sets Rev 1 whatever it is given
	stored := createRun(t, st, want)
	want.Rev = 1
	if diff := runDiff(want, stored); diff != "" {
		t.Errorf("run returned by CreateRun: %s", diff)
	}
	checkRun(t, st, "after CreateRun", want)

	// A run with nothing optional set.
	bare := store.Run{ID: unique("run-"), Flow: want.Flow, Key: unique("key-"), Status: store.RunPending, Created: want.Created, Updated: want.Created}
	createRun(t, st, bare)
	bare.Rev = 1
	checkRun(t, st, "a run with no input, data or steps", bare)
}

// testRunCreateExisting: one run per flow and key; the same key under
// another flow is another run.
func testRunCreateExisting(t *testing.T, st store.Store) {
	ctx := t.Context()
	at := stamp(time.Now())
	flow, key := unique("flow-"), unique("key-")
	first := createRun(t, st, sampleRun(unique("run-"), flow, key, at))

	again := sampleRun(unique("run-"), flow, key, at.Add(time.Second))
	again.Status, again.Input, again.Version = store.RunPending, json.RawMessage(`{"second":true}`), 4
	got, created, err := st.CreateRun(ctx, again, nil)
	if err != nil {
		t.Fatalf("CreateRun of an existing flow and key: %v; expected the existing run and no error", err)
	}
	if created {
		t.Errorf("CreateRun of an existing flow and key reported created")
	}
	if diff := runDiff(first, got); diff != "" {
		t.Errorf("CreateRun of an existing flow and key with id %s: expected the first run %s back: %s", again.ID, first.ID, diff)
	}
	_, err = st.Run(ctx, again.ID)
	expectNotFound(t, "Run of the id given to the refused CreateRun", err)
	checkRun(t, st, "the first run after a second CreateRun of its key", first)

	other := sampleRun(unique("run-"), unique("flow-"), key, at)
	if stored := createRun(t, st, other); stored.ID != other.ID {
		t.Errorf("CreateRun of key %s under another flow returned run %s; expected the new run %s", key, stored.ID, other.ID)
	}
	other.Rev = 1
	checkRun(t, st, "the same key under another flow", other)
	checkRun(t, st, "the first run, after its key was used under another flow", first)

	// Flow and key must not run into each other however the store joins
	// them.
	f := unique("flow-")
	for _, sep := range []string{":", "/", ".", "-", "|"} {
		a := store.Run{ID: unique("run-"), Flow: f, Key: "x" + sep + "y", Status: store.RunPending, Created: at, Updated: at}
		b := store.Run{ID: unique("run-"), Flow: f + sep + "x", Key: "y", Status: store.RunPending, Created: at, Updated: at}
		createRun(t, st, a)
		if got, created, err := st.CreateRun(ctx, b, nil); err != nil || !created || got.ID != b.ID {
			t.Errorf("CreateRun (flow %q, key %q) after (flow %q, key %q): got run %s, created %v, err %v; expected a new run %s",
				b.Flow, b.Key, a.Flow, a.Key, got.ID, created, err, b.ID)
		}
	}
}

// testRunCreateInvalid: a run needs an id, a flow and a key.
func testRunCreateInvalid(t *testing.T, st store.Store) {
	ctx := t.Context()
	base := sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now()))
	for _, c := range []struct {
		missing string
		edit    func(r *store.Run)
	}{
		{"id", func(r *store.Run) { r.ID = "" }},
		{"flow", func(r *store.Run) { r.Flow = "" }},
		{"key", func(r *store.Run) { r.Key = "" }},
	} {
		r := base
		r.ID = unique("run-")
		c.edit(&r)
		_, created, err := st.CreateRun(ctx, r, nil)
		expectCode(t, "CreateRun without a "+c.missing, err, baton.Invalid)
		if created {
			t.Errorf("CreateRun without a %s reported created", c.missing)
		}
		if r.ID != "" {
			_, err := st.Run(ctx, r.ID)
			expectNotFound(t, "Run after a CreateRun without a "+c.missing, err)
		}
	}
	runs, err := st.ListRuns(ctx, store.RunQuery{Flow: base.Flow})
	if err != nil || len(runs) != 0 {
		t.Errorf("ListRuns of the flow after invalid CreateRuns: expected none; got %d, err %v", len(runs), err)
	}
}

// testRunInvalidJSON: a run whose input, result or data is not JSON is
// refused, created or saved, and nothing is written: the store keeps them as
// they are in the run's document, which must read back.
func testRunInvalidJSON(t *testing.T, st store.Store) {
	ctx := t.Context()
	bad := []struct {
		field string
		edit  func(r *store.Run)
	}{
		{"input", func(r *store.Run) { r.Input = json.RawMessage(`{"order": "ORDER-1"`) }},
		{"result", func(r *store.Run) { r.Result = json.RawMessage(`partial`) }},
		{"data", func(r *store.Run) { r.Data = json.RawMessage(`{"a": 1} {"b": 2}`) }},
		{"data", func(r *store.Run) { r.Data = json.RawMessage(`{"steps": {"charge": {"id": "ch_1",}}}`) }},
	}
	for _, c := range bad {
		r := sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now()))
		c.edit(&r)
		_, created, err := st.CreateRun(ctx, r, nil)
		expectCode(t, "CreateRun with invalid JSON in its "+c.field, err, baton.Invalid)
		if created {
			t.Errorf("CreateRun with invalid JSON in its %s reported created", c.field)
		}
		_, err = st.Run(ctx, r.ID)
		expectNotFound(t, "Run after a CreateRun with invalid JSON in its "+c.field, err)
	}
	for _, c := range bad {
		r := createRun(t, st, sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now())))
		next := advance(r, "valid")
		saved, err := st.SaveRun(ctx, next, nil)
		if err != nil {
			t.Fatalf("SaveRun of run %s: %v", r.ID, err)
		}
		next = advance(saved, "invalid")
		c.edit(&next)
		_, err = st.SaveRun(ctx, next, nil)
		expectCode(t, "SaveRun with invalid JSON in its "+c.field, err, baton.Invalid)
		got := loadRun(t, st, r.ID)
		if got.Rev != saved.Rev || !sameJSON(got.Data, saved.Data) {
			t.Errorf("run %s after a SaveRun with invalid JSON in its %s: rev %d, data %s; expected the saved rev %d, data %s",
				r.ID, c.field, got.Rev, got.Data, saved.Rev, saved.Data)
		}
		// A later save from the stored revision goes through.
		if _, err := st.SaveRun(ctx, advance(saved, "again"), nil); err != nil {
			t.Errorf("SaveRun of run %s after one refused: %v", r.ID, err)
		}
	}
}

// testRunNotFound: Run of an unknown id is baton.ErrNotFound.
func testRunNotFound(t *testing.T, st store.Store) {
	_, err := st.Run(t.Context(), unique("run-unknown-"))
	expectNotFound(t, "Run of an unknown id", err)
	createRun(t, st, sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now())))
	_, err = st.Run(t.Context(), unique("run-unknown-"))
	expectNotFound(t, "Run of an unknown id, with another run stored", err)
}

// advance returns r as a coordinator would save it next: running, one more
// step, new data; tag makes it tell apart from other saves.
func advance(r store.Run, tag string) store.Run {
	r.Status = store.RunRunning
	r.Error = ""
	r.Updated = r.Updated.Add(time.Second)
	r.Data = json.RawMessage(fmt.Sprintf(`{"by": %q, "n": %d}`, tag, r.Rev))
	steps := make(map[string]*store.StepState, len(r.Steps)+1)
	for n, s := range r.Steps {
		c := *s
		steps[n] = &c
	}
	steps["step-"+tag] = &store.StepState{Status: store.StepRunning, Attempts: 1, Started: r.Updated}
	r.Steps = steps
	return r
}

// testRunSave: SaveRun with the stored Rev stores the run and returns it
// with Rev+1.
func testRunSave(t *testing.T, st store.Store) {
	ctx := t.Context()
	r := sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now()))
	r.Status = store.RunPending
	r = createRun(t, st, r)

	for i := range 3 {
		next := advance(r, fmt.Sprint(i))
		if i == 2 {
			next.Status, next.Result = store.RunCompleted, json.RawMessage(`{"shipped": true}`)
			next.Steps["charge"].Status = store.StepCompensated
		}
		saved, err := st.SaveRun(ctx, next, nil)
		if err != nil {
			t.Fatalf("save %d with Rev %d, the stored one: %v", i+1, next.Rev, err)
		}
		want := next
		want.Rev = next.Rev + 1
		if diff := runDiff(want, saved); diff != "" {
			t.Errorf("run returned by save %d: %s", i+1, diff)
		}
		checkRun(t, st, fmt.Sprintf("after save %d", i+1), want)
		r = saved
	}
	if r.Rev != 4 {
		t.Errorf("after a create and 3 saves: Rev %d, want 4", r.Rev)
	}

	// Status is indexed: the listing follows the saves.
	for _, c := range []struct {
		status store.RunStatus
		want   int
	}{{store.RunCompleted, 1}, {store.RunPending, 0}, {store.RunRunning, 0}} {
		got, err := st.ListRuns(ctx, store.RunQuery{Flow: r.Flow, Status: c.status})
		if err != nil || len(got) != c.want {
			t.Errorf("ListRuns of the flow with status %s after saving it %s: expected %d runs; got %d, err %v",
				c.status, store.RunCompleted, c.want, len(got), err)
		}
	}

	_, err := st.SaveRun(ctx, sampleRun(unique("run-unknown-"), r.Flow, unique("key-"), r.Created), nil)
	expectNotFound(t, "SaveRun of an unknown id", err)
}

// testRunSaveConflict: SaveRun with another Rev than the stored one is a
// Conflict and writes nothing.
func testRunSaveConflict(t *testing.T, st store.Store) {
	ctx := t.Context()
	r := createRun(t, st, sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now())))
	current, err := st.SaveRun(ctx, advance(r, "current"), nil)
	if err != nil {
		t.Fatalf("save with Rev 1: %v", err)
	}
	for _, rev := range []int64{1, 0, current.Rev + 1, -1} {
		stale := advance(r, "stale")
		stale.Status, stale.Rev = store.RunFailed, rev
		_, err := st.SaveRun(ctx, stale, nil)
		expectCode(t, fmt.Sprintf("SaveRun with Rev %d while %d is stored", rev, current.Rev), err, baton.Conflict)
		checkRun(t, st, fmt.Sprintf("after a refused SaveRun with Rev %d", rev), current)
	}
	next, err := st.SaveRun(ctx, advance(current, "next"), nil)
	if err != nil {
		t.Fatalf("save with Rev %d after the refused saves: %v", current.Rev, err)
	}
	if next.Rev != current.Rev+1 {
		t.Errorf("save after refused saves: Rev %d, want %d", next.Rev, current.Rev+1)
	}
}

// testRunSaveRace: of saves racing from the same Rev, exactly one wins.
func testRunSaveRace(t *testing.T, st store.Store) {
	const racers = 8
	ctx := t.Context()
	r := createRun(t, st, sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now())))
	start := make(chan struct{})
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			next := advance(r, fmt.Sprintf("racer-%d", i))
			next.Error = fmt.Sprintf("racer-%d", i)
			<-start
			_, errs[i] = st.SaveRun(ctx, next, nil)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both saved from Rev %d; expected exactly one to win", winner, i, r.Rev)
		case err == nil:
			winner = i
		case baton.ErrorCode(err) != baton.Conflict:
			t.Errorf("racer %d: expected a conflict or success; got %v (code %q)", i, err, baton.ErrorCode(err))
		}
	}
	if winner < 0 {
		t.Fatalf("none of %d saves racing from Rev %d succeeded: %v", racers, r.Rev, errs)
	}
	want := advance(r, fmt.Sprintf("racer-%d", winner))
	want.Error = fmt.Sprintf("racer-%d", winner)
	want.Rev = r.Rev + 1
	checkRun(t, st, fmt.Sprintf("after the race won by racer %d", winner), want)
}

// runIDs lists ids, for messages.
func runIDs(runs []store.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

// selectRuns is what q must return from all (newest first), by the
// semantics of store.RunQuery, without After and Limit.
func selectRuns(all []store.Run, q store.RunQuery) []store.Run {
	var out []store.Run
	for _, r := range all {
		if (q.Flow == "" || r.Flow == q.Flow) && (q.Status == "" || r.Status == q.Status) && (q.Key == "" || r.Key == q.Key) &&
			(q.Since.IsZero() || !r.Created.Before(q.Since)) && (q.Until.IsZero() || r.Created.Before(q.Until)) {
			out = append(out, r)
		}
	}
	return out
}

func describeQuery(q store.RunQuery) string {
	var p []string
	if q.Flow != "" {
		p = append(p, "Flow "+q.Flow)
	}
	if q.Status != "" {
		p = append(p, "Status "+string(q.Status))
	}
	if q.Key != "" {
		p = append(p, "Key "+q.Key)
	}
	if !q.Since.IsZero() {
		p = append(p, "Since "+q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		p = append(p, "Until "+q.Until.Format(time.RFC3339Nano))
	}
	if q.After != "" {
		p = append(p, "After "+q.After)
	}
	if q.Limit != 0 {
		p = append(p, fmt.Sprintf("Limit %d", q.Limit))
	}
	if len(p) == 0 {
		return "{}"
	}
	return "{" + strings.Join(p, ", ") + "}"
}

// listedRuns creates the 30 runs of the listing cases: flows i%3, statuses
// i%4, keys i/3 (each key in the three flows), Created one second apart,
// created in a shuffled order. It returns the flows and the runs newest
// first.
func listedRuns(t *testing.T, st store.Store) ([3]string, []store.Run) {
	t.Helper()
	const n = 30
	flows := [3]string{unique("flow-a-"), unique("flow-b-"), unique("flow-c-")}
	statuses := []store.RunStatus{store.RunPending, store.RunRunning, store.RunCompleted, store.RunFailed}
	base := stamp(time.Now()).Add(-time.Hour)
	runs := make([]store.Run, n)
	for i := range runs {
		at := base.Add(time.Duration(i)*time.Second + time.Duration(i)*time.Millisecond)
		runs[i] = store.Run{
			// Ids in no relation to the creation order.
			ID: unique("run-"), Flow: flows[i%3], Version: 1, Key: fmt.Sprintf("key-%02d", i/3),
			Status: statuses[i%4], Created: at, Updated: at,
			Input: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i)),
		}
	}
	for _, i := range rand.Perm(n) {
		runs[i] = createRun(t, st, runs[i])
	}
	slices.Reverse(runs)
	return flows, runs
}

// testRunList: ListRuns filters by flow, status, key and creation time, and
// returns the runs newest first, at most Limit.
func testRunList(t *testing.T, st store.Store) {
	flows, newest := listedRuns(t, st)
	created := func(i int) time.Time { return newest[len(newest)-1-i].Created } // of the i-th run created
	cases := []struct {
		q    store.RunQuery
		want int
	}{
		{store.RunQuery{}, 30},
		{store.RunQuery{Flow: flows[1]}, 10},
		{store.RunQuery{Status: store.RunRunning}, 8},
		{store.RunQuery{Status: store.RunCancelled}, 0},
		{store.RunQuery{Flow: flows[0], Status: store.RunRunning}, 2},
		{store.RunQuery{Key: "key-04"}, 3},
		{store.RunQuery{Flow: flows[2], Key: "key-04"}, 1},
		{store.RunQuery{Flow: flows[2], Key: "key-04", Status: store.RunPending}, 0},
		{store.RunQuery{Flow: flows[2], Key: "key-04", Status: store.RunCompleted}, 1},
		{store.RunQuery{Flow: flows[2], Key: "key-04", Since: created(14)}, 1},
		{store.RunQuery{Flow: flows[2], Key: "key-04", Since: created(14).Add(time.Millisecond)}, 0},
		{store.RunQuery{Flow: flows[2], Key: "key-04", Until: created(14)}, 0},
		{store.RunQuery{Flow: flows[2], Key: "key-04", Until: created(14).Add(time.Millisecond)}, 1},
		{store.RunQuery{Key: "key-04", Status: store.RunRunning}, 1},
		{store.RunQuery{Key: "key-04", Status: store.RunFailed}, 0},
		{store.RunQuery{Key: "key-unknown"}, 0},
		{store.RunQuery{Flow: unique("flow-unknown-")}, 0},
		{store.RunQuery{Since: created(10)}, 20},
		{store.RunQuery{Until: created(10)}, 10},
		{store.RunQuery{Since: created(10).Add(-time.Millisecond), Until: created(10).Add(time.Millisecond)}, 1},
		{store.RunQuery{Since: created(5), Until: created(20)}, 15},
		{store.RunQuery{Flow: flows[1], Since: created(5), Until: created(20)}, 5},
		{store.RunQuery{Status: store.RunCompleted, Since: created(5), Until: created(20)}, 4},
		{store.RunQuery{Since: created(29).Add(time.Millisecond)}, 0},
		{store.RunQuery{Limit: 7}, 7},
		{store.RunQuery{Flow: flows[0], Limit: 3}, 3},
		{store.RunQuery{Status: store.RunPending, Limit: 5}, 5},
		{store.RunQuery{Since: created(5), Until: created(20), Limit: 4}, 4},
	}
	for _, c := range cases {
		want := selectRuns(newest, c.q)
		if c.q.Limit > 0 && len(want) > c.q.Limit {
			want = want[:c.q.Limit]
		}
		if len(want) != c.want {
			t.Fatalf("the suite's own selection for %s has %d runs, not %d", describeQuery(c.q), len(want), c.want)
		}
		got, err := st.ListRuns(t.Context(), c.q)
		if err != nil {
			t.Errorf("ListRuns %s: %v", describeQuery(c.q), err)
			continue
		}
		if !slices.Equal(runIDs(got), runIDs(want)) {
			t.Errorf("ListRuns %s: expected %d runs, newest first, %s; got %d: %s",
				describeQuery(c.q), len(want), sample(runIDs(want)), len(got), sample(runIDs(got)))
			continue
		}
		for i := range want {
			if diff := runDiff(want[i], got[i]); diff != "" {
				t.Errorf("ListRuns %s, run %d: %s", describeQuery(c.q), i, diff)
				break
			}
		}
	}
}

// testRunListPages: paging with After walks a selection without overlap or
// gap, whatever the filters.
func testRunListPages(t *testing.T, st store.Store) {
	flows, newest := listedRuns(t, st)
	created := func(i int) time.Time { return newest[len(newest)-1-i].Created }
	cases := []struct {
		q    store.RunQuery
		page int
	}{
		{store.RunQuery{}, 7},
		{store.RunQuery{}, 1},
		{store.RunQuery{}, 30},
		{store.RunQuery{Flow: flows[1]}, 3},
		{store.RunQuery{Status: store.RunFailed}, 2},
		{store.RunQuery{Flow: flows[0], Status: store.RunPending}, 1},
		{store.RunQuery{Key: "key-05"}, 2},
		{store.RunQuery{Flow: flows[1], Key: "key-05"}, 1},
		{store.RunQuery{Since: created(5), Until: created(20)}, 4},
		{store.RunQuery{Flow: flows[2], Since: created(3), Until: created(27)}, 3},
	}
	for _, c := range cases {
		want := selectRuns(newest, c.q)
		var got []store.Run
		seen := map[string]int{}
		q := c.q
		q.Limit = c.page
		for pages := 1; ; pages++ {
			if pages > len(want)+2 {
				t.Fatalf("paging %s by %d: %d pages and no end, for %d runs", describeQuery(c.q), c.page, pages-1, len(want))
			}
			p, err := st.ListRuns(t.Context(), q)
			if err != nil {
				t.Fatalf("paging %s by %d: page %d (%s): %v", describeQuery(c.q), c.page, pages, describeQuery(q), err)
			}
			if n := min(c.page, len(want)-len(got)); len(p) != n {
				t.Fatalf("paging %s by %d: page %d (%s) has %d runs %s; expected %d (%d of %d listed so far)",
					describeQuery(c.q), c.page, pages, describeQuery(q), len(p), sample(runIDs(p)), n, len(got), len(want))
			}
			if len(p) == 0 {
				break
			}
			for _, r := range p {
				if prev, ok := seen[r.ID]; ok {
					t.Fatalf("paging %s by %d: page %d (%s) repeats run %s of page %d",
						describeQuery(c.q), c.page, pages, describeQuery(q), r.ID, prev)
				}
				seen[r.ID] = pages
			}
			got = append(got, p...)
			q.After = p[len(p)-1].ID
		}
		if !slices.Equal(runIDs(got), runIDs(want)) {
			t.Errorf("paging %s by %d: the pages concatenate to %s; expected %s, newest first",
				describeQuery(c.q), c.page, sample(runIDs(got)), sample(runIDs(want)))
		}
	}
}

// outboxTransport returns the store as a transport when it delivers its
// outbox in the run's own write, skipping the case otherwise.
func outboxTransport(t *testing.T, st store.Store, f Features) bus.Transport {
	t.Helper()
	if !f.Atomic {
		t.Skip("the backend's test does not declare Features.Atomic; RunOutboxKept covers a store-only backend's outbox")
	}
	tr, ok := st.(bus.Transport)
	if !ok {
		t.Fatalf("the test declares Features.Atomic but store %T is not also a bus.Transport, which would deliver the outbox", st)
	}
	return tr
}

func outbound(group, typ string) store.Outbound {
	m := message(typ, unique("out-"), unique("corr-"), 1, 0)
	return store.Outbound{Group: group, Type: m.Type, ID: m.ID, Body: bus.AppendRecord(nil, m)}
}

func outboundIDs(out []store.Outbound) []string {
	ids := make([]string, len(out))
	for i, o := range out {
		ids[i] = o.ID
	}
	return ids
}

// expectOutbound receives exactly want on sub, as sent, then nothing more.
func expectOutbound(t *testing.T, sub bus.Subscription, want []store.Outbound, what string) {
	t.Helper()
	got := receiveN(t, sub, len(want), true, what)
	if err := checkExactlyOnce(outboundIDs(want), deliveredIDs(got)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, d := range got {
		for _, o := range want {
			sent, err := bus.ParseRecord(o.Body)
			if err != nil {
				t.Fatalf("%s: outbound %s: %v", what, o.ID, err)
			}
			if o.ID == d.ID && (d.Type != o.Type || !sameMessage(sent, d.Message) || d.Attempt != 1) {
				t.Errorf("%s: %s delivered with type %q, attempt %d, message as sent %v; want type %q, attempt 1, the message sent",
					what, d.ID, d.Type, d.Attempt, sameMessage(sent, d.Message), o.Type)
			}
		}
	}
}

// quiet listens on several subscriptions at once for quietPeriod.
func quiet(t *testing.T, what string, subs map[string]bus.Subscription) {
	t.Helper()
	var wg sync.WaitGroup
	for name, sub := range subs {
		wg.Go(func() { expectQuiet(t, sub, name+": "+what) })
	}
	wg.Wait()
}

// testRunOutboxToGroup: a message for one group reaches that group and no
// other bound to its type, on create and on save.
func testRunOutboxToGroup(t *testing.T, st store.Store, f Features) {
	tr := outboxTransport(t, st, f)
	typ := unique("cf") + ".command.v1"
	target, bystander := unique("target-"), unique("bystander-")
	to := subscribe(t, tr, target, typ)
	by := subscribe(t, tr, bystander, typ)
	subs := map[string]bus.Subscription{"the addressed group": to, "another group bound to the type": by}

	out := []store.Outbound{outbound(target, typ), outbound(target, typ)}
	r := createRun(t, st, sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now())), out...)
	expectOutbound(t, to, out, "the messages CreateRun sent to "+target)
	quiet(t, "after CreateRun sent to one group", subs)

	out = []store.Outbound{outbound(target, typ)}
	if _, err := st.SaveRun(t.Context(), advance(r, "save"), out); err != nil {
		t.Fatalf("save run with an outbound message: %v", err)
	}
	expectOutbound(t, to, out, "the message SaveRun sent to "+target)
	quiet(t, "after SaveRun sent to one group", subs)
}

// testRunOutboxToAll: a message without a group reaches every group bound to
// its type, and only those.
func testRunOutboxToAll(t *testing.T, st store.Store, f Features) {
	tr := outboxTransport(t, st, f)
	p := unique("cf")
	typ, otherType := p+".event.v1", p+".other.v1"
	exact := subscribe(t, tr, unique("exact-"), typ)
	wild := subscribe(t, tr, unique("wild-"), p+".*.v1")
	other := subscribe(t, tr, unique("other-"), otherType)
	namedGroup := unique("named-")
	named := subscribe(t, tr, namedGroup, unique("cf")+".unrelated.v1")

	r := sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now()))
	toAll := outbound("", typ)
	toOther := outbound("", otherType)
	r = createRun(t, st, r, toAll, toOther)
	expectOutbound(t, exact, []store.Outbound{toAll}, "CreateRun's message, in the group bound to its type")
	expectOutbound(t, wild, []store.Outbound{toAll, toOther}, "CreateRun's messages, in the group bound to a pattern of both types")
	expectOutbound(t, other, []store.Outbound{toOther}, "CreateRun's other message, in the group bound to its type")
	subs := map[string]bus.Subscription{"exact": exact, "wild": wild, "other": other, "named": named}
	quiet(t, "after CreateRun's messages to every group bound", subs)

	// One save: two messages to every group bound, one to a group by name.
	toAll, toOther = outbound("", typ), outbound("", otherType)
	direct := outbound(namedGroup, typ)
	if _, err := st.SaveRun(t.Context(), advance(r, "save"), []store.Outbound{toAll, direct, toOther}); err != nil {
		t.Fatalf("save run with outbound messages: %v", err)
	}
	expectOutbound(t, exact, []store.Outbound{toAll}, "SaveRun's message to all, in the group bound to its type")
	expectOutbound(t, wild, []store.Outbound{toAll, toOther}, "SaveRun's messages to all, in the group bound to a pattern of both types")
	expectOutbound(t, other, []store.Outbound{toOther}, "SaveRun's other message to all, in the group bound to its type")
	expectOutbound(t, named, []store.Outbound{direct}, "SaveRun's message to "+namedGroup+", bound to another type")
	quiet(t, "after SaveRun's messages", subs)
}

// testRunOutboxExisting: a CreateRun that finds the flow's key taken sends
// nothing.
func testRunOutboxExisting(t *testing.T, st store.Store, f Features) {
	tr := outboxTransport(t, st, f)
	typ := unique("cf") + ".start.v1"
	group := unique("worker-")
	sub := subscribe(t, tr, group, typ)
	flow, key := unique("flow-"), unique("key-")
	first := []store.Outbound{outbound(group, typ), outbound("", typ)}
	createRun(t, st, sampleRun(unique("run-"), flow, key, stamp(time.Now())), first...)
	expectOutbound(t, sub, first, "the messages of the CreateRun that created the run")

	again := sampleRun(unique("run-"), flow, key, stamp(time.Now()))
	if _, created, err := st.CreateRun(t.Context(), again, []store.Outbound{outbound(group, typ), outbound("", typ)}); err != nil || created {
		t.Fatalf("CreateRun of a taken key: created %v, err %v; expected the existing run", created, err)
	}
	expectQuiet(t, sub, "a CreateRun of a taken key sends nothing")
}

// testRunOutboxConflict: a refused SaveRun sends nothing.
func testRunOutboxConflict(t *testing.T, st store.Store, f Features) {
	tr := outboxTransport(t, st, f)
	typ := unique("cf") + ".step.v1"
	group := unique("worker-")
	sub := subscribe(t, tr, group, typ)
	r := createRun(t, st, sampleRun(unique("run-"), unique("flow-"), unique("key-"), stamp(time.Now())))
	if _, err := st.SaveRun(t.Context(), advance(r, "first"), nil); err != nil {
		t.Fatalf("save with Rev 1: %v", err)
	}
	_, err := st.SaveRun(t.Context(), advance(r, "stale"), []store.Outbound{outbound(group, typ), outbound("", typ)})
	expectCode(t, "SaveRun with a stale Rev", err, baton.Conflict)
	unknown := sampleRun(unique("run-unknown-"), r.Flow, unique("key-"), r.Created)
	_, err = st.SaveRun(t.Context(), unknown, []store.Outbound{outbound(group, typ), outbound("", typ)})
	expectNotFound(t, "SaveRun of an unknown id", err)
	expectQuiet(t, sub, "refused saves send nothing")

	current := loadRun(t, st, r.ID)
	out := []store.Outbound{outbound(group, typ)}
	if _, err := st.SaveRun(t.Context(), advance(current, "second"), out); err != nil {
		t.Fatalf("save with Rev %d: %v", current.Rev, err)
	}
	expectOutbound(t, sub, out, "the message of the save that succeeded")
	expectQuiet(t, sub, "only the successful save's message")
}

func dueRuns(t *testing.T, st store.Store, now time.Time, limit int) []store.Run {
	t.Helper()
	got, err := st.DueRuns(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueRuns at %v limit %d: %v", now, limit, err)
	}
	return got
}

// checkDue compares a DueRuns answer with the runs expected, in order.
func checkDue(t *testing.T, what string, want, got []store.Run) {
	t.Helper()
	if !slices.Equal(runIDs(got), runIDs(want)) {
		t.Errorf("%s: expected %d runs, earliest Wake first, %s; got %d: %s", what, len(want), sample(runIDs(want)), len(got), sample(runIDs(got)))
		return
	}
	for i := range want {
		if diff := runDiff(want[i], got[i]); diff != "" {
			t.Errorf("%s, run %d: %s", what, i, diff)
			return
		}
	}
}

// testRunDue: DueRuns returns the runs whose Wake has come, earliest first,
// and follows the saves that move or clear it.
func testRunDue(t *testing.T, st store.Store) {
	const n = 5
	flow := unique("flow-")
	// Wake is a function of the now DueRuns is given, never of the clock:
	// base is far from now on purpose.
	base := time.Date(2031, 3, 5, 5, 6, 7, 0, time.UTC)
	runs := make([]store.Run, n)
	for i := range runs {
		runs[i] = sampleRun(unique("run-"), flow, fmt.Sprintf("key-%d", i), stamp(time.Now()))
		runs[i].Wake = base.Add(time.Duration(i) * time.Second)
	}
	for _, i := range rand.Perm(n) {
		runs[i] = createRun(t, st, runs[i])
	}
	asleep := sampleRun(unique("run-"), flow, "key-asleep", stamp(time.Now()))
	asleep.Wake = time.Time{}
	createRun(t, st, asleep)

	checkDue(t, "DueRuns before the first Wake", nil, dueRuns(t, st, base.Add(-time.Millisecond), 100))
	checkDue(t, "DueRuns at the 3rd Wake (a run is due at its Wake)", runs[:3], dueRuns(t, st, base.Add(2*time.Second), 100))
	checkDue(t, "DueRuns at the 3rd Wake, limit 2", runs[:2], dueRuns(t, st, base.Add(2*time.Second), 2))
	checkDue(t, "DueRuns after the last Wake", runs, dueRuns(t, st, base.Add(time.Hour), 100))
	checkDue(t, "DueRuns after the last Wake, again (DueRuns does not remove)", runs, dueRuns(t, st, base.Add(time.Hour), 100))

	save := func(r store.Run, wake time.Time) store.Run {
		t.Helper()
		r.Wake = wake
		saved, err := st.SaveRun(t.Context(), r, nil)
		if err != nil {
			t.Fatalf("save run %s with Wake %v: %v", r.ID, wake, err)
		}
		return saved
	}
	runs[0] = save(runs[0], base.Add(10*time.Second)) // later
	runs[1] = save(runs[1], time.Time{})              // nothing to wait for
	runs[4] = save(runs[4], base.Add(-time.Second))   // earlier
	checkDue(t, "DueRuns at the 3rd Wake after the saves", []store.Run{runs[4], runs[2]}, dueRuns(t, st, base.Add(2*time.Second), 100))
	checkDue(t, "DueRuns after every Wake after the saves", []store.Run{runs[4], runs[2], runs[3], runs[0]}, dueRuns(t, st, base.Add(time.Hour), 100))

	// A refused save moves nothing.
	stale := runs[0]
	stale.Rev, stale.Wake = 1, base.Add(-time.Minute)
	_, err := st.SaveRun(t.Context(), stale, nil)
	expectCode(t, fmt.Sprintf("SaveRun with Rev 1 while %d is stored", runs[0].Rev), err, baton.Conflict)
	checkDue(t, "DueRuns after a refused save", []store.Run{runs[4], runs[2], runs[3], runs[0]}, dueRuns(t, st, base.Add(time.Hour), 100))
}

// testRunOutboxKept: a store that is not the transport keeps what a
// transition sends, in order, until it is marked sent; a relay's claim
// hides messages from other relays (which use the same lease) until it
// lapses.
func testRunOutboxKept(t *testing.T, st store.Store, f Features) {
	ob, ok := st.(store.Outbox)
	if !ok {
		if f.Atomic {
			t.Skip("the store is also the transport and delivers its outbox as it writes it (the RunOutbox cases)")
		}
		t.Fatal("a store that is not also an Atomic transport must implement store.Outbox, or what runs send is lost")
	}
	ctx := t.Context()
	// Long enough that consecutive calls stay within it on a slow machine.
	const lease = time.Second
	pending := func(what string) []store.Pending {
		t.Helper()
		p, err := ob.ClaimOutbound(ctx, 1000, lease)
		if err != nil {
			t.Fatalf("claim outbound (%s): %v", what, err)
		}
		return p
	}
	// A store that counts its outbox (for the baton_outbox_messages
	// metric) counts every message not yet marked sent, claimed or not.
	counter, counts := st.(interface {
		CountOutbound(ctx context.Context) (int64, error)
	})
	count := func(what string, want int64) {
		t.Helper()
		if !counts {
			return
		}
		n, err := counter.CountOutbound(ctx)
		if err != nil || n != want {
			t.Errorf("CountOutbound (%s) = %d, %v; want %d", what, n, err, want)
		}
	}
	if p := pending("at the start"); len(p) != 0 {
		t.Fatalf("a fresh store has %d pending messages; want none", len(p))
	}
	count("at the start", 0)
	typ := unique("cf") + ".step.v1"
	group := unique("worker-")
	first := []store.Outbound{outbound(group, typ), outbound("", typ)}
	flow, key := unique("flow-"), unique("key-")
	r := createRun(t, st, sampleRun(unique("run-"), flow, key, stamp(time.Now())), first...)
	if _, created, err := st.CreateRun(ctx, sampleRun(unique("run-"), flow, key, stamp(time.Now())), []store.Outbound{outbound(group, typ)}); err != nil || created {
		t.Fatalf("CreateRun of a taken key: created %v, err %v", created, err)
	}
	_, err := st.SaveRun(ctx, advance(r, "stale-rev"), nil)
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	_, err = st.SaveRun(ctx, advance(r, "stale"), []store.Outbound{outbound(group, typ)})
	expectCode(t, "SaveRun with a stale Rev", err, baton.Conflict)
	current := loadRun(t, st, r.ID)
	second := outbound(group, typ)
	if _, err := st.SaveRun(ctx, advance(current, "next"), []store.Outbound{second}); err != nil {
		t.Fatalf("save with an outbound message: %v", err)
	}
	want := append(first, second)
	count("after a create, a taken key, a stale save and a save", 3)
	got := pending("after a create, a taken key, a stale save and a save")
	if len(got) != len(want) {
		t.Fatalf("%d pending messages, want %d (the create's two and the save's one, in order)", len(got), len(want))
	}
	seen := map[string]bool{}
	for i, p := range got {
		w := want[i]
		if p.ID == "" || seen[p.ID] {
			t.Errorf("pending %d has id %q: want a unique id from the store", i, p.ID)
		}
		seen[p.ID] = true
		if p.Group != w.Group || p.Type != w.Type || p.Outbound.ID != w.ID || !bytes.Equal(w.Body, p.Body) {
			t.Errorf("pending %d is %s/%s %s; want %s/%s %s, as sent and in order", i, p.Group, p.Type, p.Outbound.ID, w.Group, w.Type, w.ID)
		}
	}
	if again := pending("while they are claimed"); len(again) != 0 {
		t.Fatalf("a second claim got %d messages while the first claim holds them; want none", len(again))
	}
	count("while they are claimed", 3)
	if err := ob.MarkSent(ctx, got[0].ID, got[1].ID, unique("unknown-")); err != nil {
		t.Fatalf("mark sent: %v", err)
	}
	count("after two were marked sent", 1)

	// A new message is claimable at once; one whose claim lapses (its
	// relay crashed) is claimable again, in order with the others.
	fourth := outbound(group, typ)
	current = loadRun(t, st, r.ID)
	if _, err := st.SaveRun(ctx, advance(current, "fourth"), []store.Outbound{fourth}); err != nil {
		t.Fatalf("save with an outbound message: %v", err)
	}
	fresh := pending("a message written after the claims")
	if len(fresh) != 1 || fresh[0].Outbound.ID != fourth.ID {
		t.Fatalf("claim after a new save got %d messages; want the new one alone (the others are sent or claimed)", len(fresh))
	}
	time.Sleep(lease + lease/2)
	lapsed := pending("after the claims lapsed")
	if len(lapsed) != 2 || lapsed[0].ID != got[2].ID || lapsed[1].ID != fresh[0].ID {
		t.Fatalf("claim after the leases lapsed got %d messages; want the two unsent ones, in order", len(lapsed))
	}
	if err := ob.MarkSent(ctx, got[2].ID, fresh[0].ID); err != nil {
		t.Fatalf("mark sent: %v", err)
	}
	time.Sleep(lease + lease/2)
	if left := pending("after marking every message sent"); len(left) != 0 {
		t.Fatalf("after marking every message sent, %d claimable; want none", len(left))
	}
	count("after marking every message sent", 0)
}
