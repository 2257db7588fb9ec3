package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

// Sizes of what a page reads: enough to see, bounded so that a page stays
// fast whatever the store holds.
const (
	runsPerPage     = 50
	runsPage        = 500    // runs one store read returns to the Overview and a status search
	statusScan      = 5_000  // runs a status search looks through for one page
	typeScan        = 5_000  // journal entries a search by event type looks through for one page
	overviewRuns    = 1_000  // runs the Overview counts by status, the newest of its window
	statusCap       = 1000   // dead letters and broken expectations counted, then "1000+"
	overviewEntries = 10_000 // journal entries the Overview reads of its window
	mapEntries      = 20_000 // journal entries the Map reads of its window
	deadPerPage     = 50
	deadScanPage    = 200
	deadScanMax     = 5_000   // dead letters one list page looks through for matches
	deadMatchMax    = 100_000 // dead letters a bulk action may look through
	tailBacklog     = 50
)

// windows are the choices of the Overview's and the Map's window.
var windows = []string{"5m", "15m", "1h", "6h", "24h", "168h"}

func window(r *http.Request, def time.Duration) (time.Duration, string, error) {
	s := r.URL.Query().Get("window")
	if s == "" {
		return def, short(def), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, s, baton.Errorf(baton.Invalid, "window", "%q is not a positive duration such as 15m or 24h", s)
	}
	return d, s, nil
}

// short writes d as a window is usually written: 15m, 1h.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// overview

type statusCount struct {
	Status store.RunStatus
	Count  int
}

type groupCount struct {
	Group                                     string
	Handled, Failed, DeadLettered, Duplicates int
}

type typeStat struct {
	Type   string
	Count  int
	HopP99 time.Duration
}

type brokenExpectation struct {
	Name  string
	Count int
	More  bool
	Keys  []string // the latest few
}

type overviewData struct {
	Window  string
	Windows []string
	Runs    []statusCount
	// RunsTruncated says the counts are of the latest overviewRuns runs
	// of the window only.
	RunsTruncated bool
	Groups        []groupCount
	Busiest       []typeStat
	Slowest       []typeStat
	Broken        []brokenExpectation
	Dead          int
	DeadMore      bool
	Entries       int
	Truncated     bool
	Last          time.Time
}

func (d *dashboard) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	win, label, err := window(r, traffic.DefaultWindow)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := time.Now()
	data := overviewData{Window: label, Windows: windows}
	if data.Runs, data.RunsTruncated, err = d.runsByStatus(ctx, now.Add(-win)); err != nil {
		d.fail(w, r, err)
		return
	}
	m, err := traffic.Build(ctx, d.store, traffic.Query{From: now.Add(-win), To: now, MaxEntries: overviewEntries})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.Entries, data.Truncated, data.Last = m.Entries, m.Truncated, m.Last
	groups := map[string]*groupCount{}
	types := map[string]*typeStat{}
	for _, e := range m.Edges {
		if e.Kind != traffic.Consumes {
			continue
		}
		g := groups[e.To]
		if g == nil {
			g = &groupCount{Group: e.To}
			groups[e.To] = g
		}
		g.Handled += e.Count
		g.Failed += e.Failed
		g.DeadLettered += e.DeadLettered
		g.Duplicates += e.Duplicates
		t := types[e.From]
		if t == nil {
			t = &typeStat{Type: e.From}
			types[e.From] = t
		}
		t.Count += e.Count
		t.HopP99 = max(t.HopP99, e.HopP99)
	}
	for _, g := range groups {
		data.Groups = append(data.Groups, *g)
	}
	slices.SortFunc(data.Groups, func(a, b groupCount) int { return strings.Compare(a.Group, b.Group) })
	for _, t := range types {
		data.Busiest = append(data.Busiest, *t)
	}
	data.Slowest = slices.Clone(data.Busiest)
	slices.SortFunc(data.Busiest, func(a, b typeStat) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Type, b.Type)) })
	slices.SortFunc(data.Slowest, func(a, b typeStat) int {
		return cmp.Or(cmp.Compare(b.HopP99, a.HopP99), strings.Compare(a.Type, b.Type))
	})
	data.Busiest = data.Busiest[:min(5, len(data.Busiest))]
	data.Slowest = slices.DeleteFunc(data.Slowest[:min(5, len(data.Slowest))], func(t typeStat) bool { return t.HopP99 == 0 })
	for _, x := range d.expect {
		// An expectation's watcher keeps each instance it broke as a
		// failed run of its reserved flow, until the event comes late.
		runs, err := d.store.ListRuns(ctx, store.RunQuery{Flow: flow.ReservedPrefix + x.Name, Status: store.RunFailed, Limit: statusCap + 1})
		if err != nil {
			d.fail(w, r, err)
			return
		}
		b := brokenExpectation{Name: x.Name, Count: min(len(runs), statusCap), More: len(runs) > statusCap}
		for _, run := range runs[:min(5, len(runs))] {
			b.Keys = append(b.Keys, run.Key)
		}
		data.Broken = append(data.Broken, b)
	}
	dead, err := d.store.ListDead(ctx, "", statusCap+1)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.Dead, data.DeadMore = min(len(dead), statusCap), len(dead) > statusCap
	d.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: data})
}

// runsByStatus counts the runs started since from by status, in one pass
// over the store's index of creation times, newest first; past
// overviewRuns runs it stops and says so, so that the page stays fast
// whatever the window holds.
func (d *dashboard) runsByStatus(ctx context.Context, from time.Time) ([]statusCount, bool, error) {
	counts := map[store.RunStatus]int{}
	q := store.RunQuery{Since: from, Limit: runsPage}
	seen, truncated := 0, false
	for {
		page, err := flow.ListRuns(ctx, d.store, q)
		if err != nil {
			return nil, false, err
		}
		for _, r := range page {
			counts[r.Status]++
		}
		seen += len(page)
		if len(page) < runsPage {
			break
		}
		if seen >= overviewRuns {
			truncated = true
			break
		}
		q.After = page[len(page)-1].ID
	}
	var out []statusCount
	for _, s := range statuses {
		out = append(out, statusCount{Status: s, Count: counts[s]})
	}
	return out, truncated, nil
}

// runsOfKey returns the runs with a business key, newest first: a look-up
// of the store's flow-and-key index for each flow this process knows, not
// a scan of every run.
func (d *dashboard) runsOfKey(ctx context.Context, key string) ([]store.Run, error) {
	var out []store.Run
	seen := map[string]bool{}
	for _, f := range d.flows {
		if seen[f.Name] {
			continue
		}
		seen[f.Name] = true
		runs, err := d.store.ListRuns(ctx, store.RunQuery{Flow: f.Name, Key: key, Limit: 1})
		if err != nil {
			return nil, err
		}
		out = append(out, runs...)
	}
	slices.SortFunc(out, func(a, b store.Run) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// search

type searchData struct {
	Key, Flow, Status, Type, Since, Until, After string
	Flows                                        []string
	Statuses                                     []store.RunStatus
	Searched                                     bool
	Transaction                                  int // journal entries of Key
	Runs                                         []store.Run
	Next                                         string // the After of the next page
	// Scanned, when not zero, is how many runs a status search looked
	// through before it stopped short of a full page.
	Scanned int
	// Typed are the transactions with an event of Type, newest first, from
	// the journal entries below Before back to TypedFrom; TypedNext, when
	// not zero, is the Before of the page that looks further back.
	Typed     []typedTransaction
	Before    string
	TypedFrom uint64
	TypedNext uint64
	Problem   string
}

// typedTransaction is a transaction a search by event type found: its
// correlation id and its latest entry of that type.
type typedTransaction struct {
	CorrelationID string
	Outcome       store.Outcome
	Group         string
	Time          time.Time
}

var statuses = []store.RunStatus{store.RunPending, store.RunRunning, store.RunCompensating, store.RunCompleted, store.RunFailed, store.RunCancelled}

func (d *dashboard) search(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	data := searchData{Key: strings.TrimSpace(q.Get("key")), Flow: q.Get("flow"), Status: q.Get("status"),
		Type: strings.TrimSpace(q.Get("type")), Since: q.Get("since"), Until: q.Get("until"), After: q.Get("after"),
		Before: q.Get("before"), Statuses: statuses}
	for _, f := range d.flows {
		if !slices.Contains(data.Flows, f.Name) {
			data.Flows = append(data.Flows, f.Name)
		}
	}
	rq := store.RunQuery{Flow: data.Flow, Key: data.Key, After: data.After, Limit: runsPerPage + 1}
	var problems []string
	if data.Status != "" {
		if !slices.Contains(statuses, store.RunStatus(data.Status)) {
			problems = append(problems, "status "+strconv.Quote(data.Status)+" is not one of pending, running, compensating, completed, failed, cancelled")
		}
		rq.Status = store.RunStatus(data.Status)
	}
	var err error
	if rq.Since, err = timeParam(data.Since, "since"); err != nil {
		problems = append(problems, err.Error())
	}
	if rq.Until, err = timeParam(data.Until, "until"); err != nil {
		problems = append(problems, err.Error())
	}
	var before uint64
	if data.Before != "" {
		if before, err = strconv.ParseUint(data.Before, 10, 64); err != nil || data.Type == "" {
			problems = append(problems, "before "+strconv.Quote(data.Before)+" is not a journal position of a search by event type: follow the page's own links")
		}
	}
	if len(problems) > 0 {
		data.Problem = strings.Join(problems, "; ")
		d.render(w, r, http.StatusBadRequest, "search", page{Title: "Search", Nav: "search", Data: data})
		return
	}
	data.Searched = len(q) > 0
	if data.Key != "" {
		h, err := d.store.History(ctx, data.Key)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		data.Transaction = len(h)
	}
	if data.Type != "" {
		if data.Typed, data.TypedFrom, data.TypedNext, err = d.transactionsOfType(ctx, data.Type, rq.Since, rq.Until, before); err != nil {
			d.fail(w, r, err)
			return
		}
		// A search by type alone finds transactions; runs have no type.
		data.Searched = data.Key != "" || data.Flow != "" || data.Status != ""
	}
	if data.Searched {
		var runs []store.Run
		var err error
		if rq.Key != "" && rq.Flow == "" {
			// One run a flow at most: look each flow up by its index.
			runs, err = d.runsOfKey(ctx, rq.Key)
			runs = slices.DeleteFunc(runs, func(run store.Run) bool {
				return rq.Status != "" && run.Status != rq.Status || !rq.Since.IsZero() && run.Created.Before(rq.Since) ||
					!rq.Until.IsZero() && !run.Created.Before(rq.Until) || rq.After != ""
			})
		} else if rq.Status != "" {
			runs, data.Next, data.Scanned, err = d.runsWithStatus(ctx, rq)
		} else {
			runs, err = flow.ListRuns(ctx, d.store, rq)
		}
		if err != nil {
			d.fail(w, r, err)
			return
		}
		if len(runs) > runsPerPage {
			runs = runs[:runsPerPage]
			data.Next = runs[len(runs)-1].ID
			data.Scanned = 0
		}
		data.Runs = runs
	}
	d.render(w, r, http.StatusOK, "search", page{Title: "Search", Nav: "search", Data: data})
}

// transactionsOfType finds the transactions that journaled an event of
// type typ between since and until (zero: the whole journal), newest first.
// The journal is indexed by sequence and by correlation id, not by type, so
// one page reads at most typeScan entries, those below before (zero: to the
// end), and returns the position it read from and, when the window holds
// more before it, the before of the page that looks further back.
func (d *dashboard) transactionsOfType(ctx context.Context, typ string, since, until time.Time, before uint64) (found []typedTransaction, from, next uint64, err error) {
	var lo uint64 // the window's entries come after it
	if !since.IsZero() {
		if lo, err = traffic.After(ctx, d.store, since); err != nil {
			return nil, 0, 0, err
		}
	}
	hi := before - 1 // the page's last entry, included
	if before == 0 {
		last := time.Now()
		if !until.IsZero() {
			last = until // excluded: After gives the last entry before it
		}
		if hi, err = traffic.After(ctx, d.store, last); err != nil {
			return nil, 0, 0, err
		}
	}
	from = lo
	if hi > lo+typeScan {
		from = hi - typeScan
	}
	latest := map[string]int{}
	for at := from; at < hi; {
		page, err := d.store.Since(ctx, at, tailPage)
		if err != nil {
			return nil, 0, 0, err
		}
		for _, e := range page {
			if e.Seq > hi {
				break
			}
			at = e.Seq
			if e.EventType != typ || e.CorrelationID == "" {
				continue
			}
			t := typedTransaction{CorrelationID: e.CorrelationID, Outcome: e.Outcome, Group: e.Group, Time: e.Time}
			if i, ok := latest[e.CorrelationID]; ok {
				found[i] = t
				continue
			}
			latest[e.CorrelationID] = len(found)
			found = append(found, t)
		}
		if len(page) < tailPage {
			break
		}
	}
	slices.SortStableFunc(found, func(a, b typedTransaction) int { return b.Time.Compare(a.Time) })
	if from > lo {
		next = from + 1
	}
	return found, from, next, nil
}

// runsWithStatus pages through the runs rq selects but for its status,
// newest first, keeping those with the status: the stores index runs by
// creation time and by flow, not by status, so a status that few runs have
// would otherwise make one request read every run. It stops after
// statusScan runs and returns where it stopped (next) and how many it read
// (scanned) when that cut a page short; the page links on from there.
func (d *dashboard) runsWithStatus(ctx context.Context, rq store.RunQuery) (runs []store.Run, next string, scanned int, err error) {
	q := rq
	q.Status, q.Limit = "", runsPage
	for len(runs) <= runsPerPage {
		page, err := flow.ListRuns(ctx, d.store, q)
		if err != nil {
			return nil, "", 0, err
		}
		for _, r := range page {
			if r.Status == rq.Status {
				runs = append(runs, r)
			}
		}
		scanned += len(page)
		if len(page) < runsPage {
			return runs, "", 0, nil
		}
		q.After = page[len(page)-1].ID
		if scanned >= statusScan && len(runs) <= runsPerPage {
			return runs, q.After, scanned, nil
		}
	}
	return runs, "", 0, nil
}

// timeParam reads a time given as RFC 3339, or as the value of an HTML
// datetime-local input, which is taken as UTC.
func timeParam(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, baton.Errorf(baton.Invalid, name, "%q is not a time such as 2026-12-06T10:30 (UTC) or 2026-12-06T10:30:00+01:00", s)
}

// transaction

type txData struct {
	ID       string
	Entries  []store.Entry
	Timeline timeline
	TraceIDs []string
	Runs     []runView
	Dead     int // entries that dead-lettered
}

type runView struct {
	Run   store.Run
	Graph *graph // nil when this process does not know the flow's version
	Steps []stepView
}

type stepView struct {
	Path string
	*store.StepState
}

func (d *dashboard) transaction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	entries, err := d.store.History(ctx, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	runs, err := d.runsOfKey(ctx, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if len(entries) == 0 && len(runs) == 0 {
		d.fail(w, r, baton.Errorf(baton.NotFound, "transaction "+id, "nothing was journaled under this correlation id and no run has it as its key; search for another"))
		return
	}
	data := txData{ID: id, Entries: entries, Timeline: buildTimeline(entries, runs, time.Now())}
	for _, e := range entries {
		if e.TraceID != "" && !slices.Contains(data.TraceIDs, e.TraceID) {
			data.TraceIDs = append(data.TraceIDs, e.TraceID)
		}
		if e.Outcome == store.DeadLettered {
			data.Dead++
		}
	}
	for _, run := range runs {
		v := runView{Run: run}
		if f, ok := d.flow(run.Flow, run.Version); ok {
			v.Graph = flowGraph(f, run.Steps)
		}
		for path, st := range run.Steps {
			v.Steps = append(v.Steps, stepView{Path: path, StepState: st})
		}
		slices.SortFunc(v.Steps, func(a, b stepView) int {
			return cmp.Or(a.Started.Compare(b.Started), strings.Compare(a.Path, b.Path))
		})
		data.Runs = append(data.Runs, v)
	}
	d.render(w, r, http.StatusOK, "transaction", page{Title: "Transaction " + id, Nav: "search", Data: data})
}

// flow returns the definition of a flow at a version.
func (d *dashboard) flow(name string, version int) (flow.Flow, bool) {
	for _, f := range d.flows {
		if f.Name == name && f.Version == version {
			return f, true
		}
	}
	return flow.Flow{}, false
}

// run sends a run's id to the transaction of its key.
func (d *dashboard) run(w http.ResponseWriter, r *http.Request) {
	run, err := d.store.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/tx/"+url.PathEscape(run.Key)+"#run-"+url.PathEscape(run.ID), http.StatusSeeOther)
}

// map

type mapData struct {
	Window  string
	Windows []string
	Map     traffic.Map
	Graph   *graph
}

func (d *dashboard) trafficMap(w http.ResponseWriter, r *http.Request) {
	win, label, err := window(r, traffic.DefaultWindow)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := time.Now()
	m, err := traffic.Build(r.Context(), d.store, traffic.Query{From: now.Add(-win), To: now, MaxEntries: mapEntries})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "map", page{Title: "Map", Nav: "map", Data: mapData{Window: label, Windows: windows, Map: m, Graph: mapGraph(m)}})
}

// dead letters

type deadFilter struct {
	Group, Type, Reason, Correlation, Since, Until string
	since, until                                   time.Time
}

func readDeadFilter(r *http.Request) (deadFilter, error) {
	q := r.URL.Query()
	f := deadFilter{Group: q.Get("group"), Type: q.Get("type"), Reason: q.Get("reason"), Correlation: q.Get("correlation"),
		Since: q.Get("since"), Until: q.Get("until")}
	var err, err2 error
	f.since, err = timeParam(f.Since, "since")
	f.until, err2 = timeParam(f.Until, "until")
	return f, errors.Join(err, err2)
}

func (f deadFilter) match(dl store.DeadLetter) bool {
	return (f.Group == "" || dl.Group == f.Group) &&
		(f.Type == "" || dl.Type == f.Type) &&
		(f.Reason == "" || strings.Contains(strings.ToLower(dl.Reason), strings.ToLower(f.Reason))) &&
		(f.Correlation == "" || dl.CorrelationID == f.Correlation) &&
		(f.since.IsZero() || !dl.Time.Before(f.since)) &&
		(f.until.IsZero() || dl.Time.Before(f.until))
}

func (f deadFilter) any() bool {
	return f.Group != "" || f.Type != "" || f.Reason != "" || f.Correlation != "" || f.Since != "" || f.Until != ""
}

type deadData struct {
	Filter  deadFilter
	Dead    []store.DeadLetter
	Next    string // the after of the next page
	Scanned int
	Problem string
}

func (d *dashboard) deadLetters(w http.ResponseWriter, r *http.Request) {
	f, err := readDeadFilter(r)
	data := deadData{Filter: f}
	if err != nil {
		data.Problem = err.Error()
		d.render(w, r, http.StatusBadRequest, "dead", page{Title: "Dead letters", Nav: "dead", Data: data})
		return
	}
	after, more := r.URL.Query().Get("after"), true
	for more && data.Scanned < deadScanMax && len(data.Dead) < deadPerPage {
		page, err := d.store.ListDead(r.Context(), after, deadScanPage)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		more = len(page) == deadScanPage
		for i, dl := range page {
			data.Scanned++
			after = dl.ID
			if f.match(dl) {
				data.Dead = append(data.Dead, dl)
				if len(data.Dead) == deadPerPage {
					more = more || i < len(page)-1
					break
				}
			}
		}
	}
	if more {
		data.Next = after
	}
	d.render(w, r, http.StatusOK, "dead", page{Title: "Dead letters", Nav: "dead", Data: data})
}

// Matched is the body of GET /dead-letters/match: the ids of the dead
// letters a filter selects, which a bulk action replays or drops one by one
// through the API.
type Matched struct {
	IDs []string `json:"ids"`
	// Truncated is set when there were more dead letters than a bulk
	// action looks through; the action can be repeated for the rest.
	Truncated bool `json:"truncated"`
}

func (d *dashboard) deadMatch(w http.ResponseWriter, r *http.Request) {
	f, err := readDeadFilter(r)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	out := Matched{IDs: []string{}}
	after, scanned := "", 0
	for {
		page, err := d.store.ListDead(r.Context(), after, deadScanPage)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		for _, dl := range page {
			if f.match(dl) {
				out.IDs = append(out.IDs, dl.ID)
			}
		}
		scanned += len(page)
		if len(page) < deadScanPage {
			break
		}
		if scanned >= deadMatchMax {
			out.Truncated = true
			break
		}
		after = page[len(page)-1].ID
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeJSONError(w http.ResponseWriter, err error) {
	code := baton.ErrorCode(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(api.Status(code))
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": err.Error()}})
}

type deadLetterData struct {
	Dead store.DeadLetter
	Body string // indented when it is JSON
}

func (d *dashboard) deadLetter(w http.ResponseWriter, r *http.Request) {
	dl, err := d.store.Dead(r.Context(), r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "deadletter", page{Title: "Dead letter " + dl.ID, Nav: "dead", Data: deadLetterData{Dead: dl, Body: indent(dl.Body)}})
}

// indent pretty-prints JSON, and gives anything else as it is.
func indent(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(b)
	}
	return string(out)
}

// schedules

type scheduleView struct {
	store.Schedule
	Next    time.Time
	Problem string
}

func (d *dashboard) schedules(w http.ResponseWriter, r *http.Request) {
	if d.sched == nil {
		d.fail(w, r, baton.Errorf(baton.NotFound, "schedules", "this process runs no scheduler (baton server does)"))
		return
	}
	list, err := d.sched.List(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := time.Now()
	var views []scheduleView
	for _, sc := range list {
		v := scheduleView{Schedule: sc}
		if v.Next, err = flow.NextTick(sc, now); err != nil {
			v.Problem = err.Error()
		}
		views = append(views, v)
	}
	d.render(w, r, http.StatusOK, "schedules", page{Title: "Schedules", Nav: "schedules", Data: views})
}

// flows

type flowView struct {
	Flow  flow.Flow
	Graph *graph
	JSON  string
}

func (d *dashboard) flowsPage(w http.ResponseWriter, r *http.Request) {
	var views []flowView
	for _, f := range d.flows {
		b, _ := json.MarshalIndent(f, "", "  ")
		views = append(views, flowView{Flow: f, Graph: flowGraph(f, nil), JSON: string(b)})
	}
	d.render(w, r, http.StatusOK, "flows", page{Title: "Flows", Nav: "flows", Data: views})
}
