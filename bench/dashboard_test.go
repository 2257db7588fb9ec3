package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/ui"
)

// BenchmarkDashboard renders each page of the dashboard on the server (no
// network, no browser) over an embedded store holding BATON_BENCH_RUNS runs
// (default 1,000,000) and BATON_BENCH_ENTRIES journal entries (default
// 10,000,000), written straight through the store's Append (10,000 entries
// a batch) and CreateRun (64 at once). The data take minutes to write: with
// BATON_BENCH_DASHBOARD_DIR they are kept there and reused by the next run.
//
//	go test -run '^$' -bench Dashboard -benchtime 20x -timeout 2h ./bench
func BenchmarkDashboard(b *testing.B) {
	runs := envInt(b, "BATON_BENCH_RUNS", 1_000_000)
	entries := envInt(b, "BATON_BENCH_ENTRIES", 10_000_000)
	dir := os.Getenv("BATON_BENCH_DASHBOARD_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	be, err := embedded.Open(embedded.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	now := time.Now()
	fill(b, ctx, be, runs, entries, now)

	a, err := api.New(api.Config{Store: be, Transport: be})
	if err != nil {
		b.Fatal(err)
	}
	h, err := ui.New(ui.Config{API: a, Store: be, Flows: []flow.Flow{orchestration.Flow()}})
	if err != nil {
		b.Fatal(err)
	}
	mid := fmt.Sprintf("o-%07d", runs/2)
	// Data reused from an earlier run are older: the windows start from
	// the newest run, as if the data had just been written.
	newest, err := be.ListRuns(ctx, store.RunQuery{Limit: 1})
	if err != nil || len(newest) == 0 {
		b.Fatalf("the newest run: %v", err)
	}
	now = newest[0].Created
	ago := func(d time.Duration) string { return (time.Since(now) + d).Round(time.Second).String() }
	oldest, err := be.ListRuns(ctx, store.RunQuery{Flow: "order", Limit: 1, Until: now.Add(-23 * time.Hour)})
	if err != nil || len(oldest) == 0 {
		b.Fatalf("an old run: %v", err)
	}
	for _, p := range []struct{ name, path string }{
		{"overview", "/?window=" + ago(15*time.Minute)},
		{"overview-24h", "/?window=" + ago(24*time.Hour)},
		{"search-key", "/search?key=" + mid},
		{"search-flow", "/search?flow=order"},
		{"search-flow-page", "/search?flow=order&after=" + oldest[0].ID},
		{"search-failed", "/search?status=failed"},
		{"search-running", "/search?status=running"},
		// No run is pending: the store reads every run to say so.
		{"search-pending", "/search?status=pending"},
		{"search-range", "/search?since=" + now.Add(-12*time.Hour).UTC().Format("2006-01-02T15:04") + "&until=" + now.Add(-11*time.Hour).UTC().Format("2006-01-02T15:04")},
		{"search-type", "/search?type=payment.processed.v1"},
		{"transaction", "/tx/" + mid},
		{"map", "/map?window=" + ago(15*time.Minute)},
		{"map-1h", "/map?window=" + ago(time.Hour)},
		{"dead-letters", "/dead-letters"},
		{"dead-letters-filtered", "/dead-letters?group=payment&reason=gateway"},
		{"schedules-none", "/flows"},
		{"tail", "/tail"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", p.path, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d\n%.400s", p.path, w.Code, w.Body)
				}
			}
		})
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: give a positive number", name, s)
	}
	return n
}

// fill writes the runs and entries unless the store has them already: an
// order per run, its key o-NNNNNNN, created over the last 24 hours, most
// completed; its transaction's entries (ten an order, as the demo's) over
// the same hours; a dead letter every 10,000 orders.
func fill(b *testing.B, ctx context.Context, be *embedded.Backend, runs, entries int, now time.Time) {
	if last, err := be.ListRuns(ctx, store.RunQuery{Limit: 1}); err != nil {
		b.Fatal(err)
	} else if len(last) > 0 {
		b.Logf("reusing the data in the directory")
		return
	}
	start := time.Now()
	span := 24 * time.Hour
	at := func(i, n int) time.Time { return now.Add(-span + time.Duration(float64(span)*float64(i)/float64(n))) }
	perOrder := max(1, entries/runs)
	outcomes := []struct {
		typ, group string
		outcome    store.Outcome
	}{
		{"order.placed.v1", "", store.Published}, {"order.placed.v1", "payment", store.Handled},
		{"payment.processed.v1", "payment", store.Published}, {"payment.processed.v1", "inventory", store.Handled},
		{"inventory.reserved.v1", "inventory", store.Published}, {"inventory.reserved.v1", "notification", store.Handled},
		{"notification.sent.v1", "notification", store.Published}, {"notification.sent.v1", "order", store.Handled},
		{"order.completed.v1", "order", store.Published}, {"order.completed.v1", "", store.Handled},
	}
	const batch = 10_000
	var buf []store.Entry
	for i := 0; i < entries; i++ {
		order := i / perOrder
		o := outcomes[i%perOrder%len(outcomes)]
		e := store.Entry{Time: at(i, entries), CorrelationID: fmt.Sprintf("o-%07d", order), Outcome: o.outcome,
			EventID: fmt.Sprintf("%x-%d", order, i%perOrder), EventType: o.typ, Subject: fmt.Sprintf("o-%07d", order),
			Source: "bench", Group: o.group, TraceID: fmt.Sprintf("%032x", order)}
		if o.outcome == store.Handled {
			e.Attempt, e.Duration = 1, 300*time.Microsecond
		}
		buf = append(buf, e)
		if len(buf) == batch {
			if err := be.Append(ctx, buf...); err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if err := be.Append(ctx, buf...); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d journal entries in %v", entries, time.Since(start).Round(time.Second))

	start = time.Now()
	statuses := []store.RunStatus{store.RunFailed, store.RunCancelled, store.RunRunning}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < runs; i += 64 {
				status := store.RunCompleted
				if i%50 == 0 {
					status = statuses[i/50%len(statuses)]
				}
				created := at(i, runs)
				r := store.Run{ID: fmt.Sprintf("r-%08d", i), Flow: "order", Version: 1, Key: fmt.Sprintf("o-%07d", i), Status: status,
					Created: created, Updated: created.Add(40 * time.Millisecond), Input: []byte(`{"order_id":"` + fmt.Sprintf("o-%07d", i) + `"}`),
					Steps: map[string]*store.StepState{"charge": {Status: store.StepCompleted, Attempts: 1, Started: created, Ended: created.Add(10 * time.Millisecond)}}}
				if _, _, err := be.CreateRun(ctx, r, nil); err != nil {
					errs <- err
					return
				}
				if i%10_000 == 0 {
					if err := be.AddDead(ctx, store.DeadLetter{Group: "payment", Type: "order.placed.v1", Body: []byte(`{}`),
						EventID: fmt.Sprintf("place-o-%07d", i), CorrelationID: fmt.Sprintf("o-%07d", i), Attempts: 4,
						Reason: "gave up after 4 attempts: payment gateway unavailable"}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("%d runs in %v", runs, time.Since(start).Round(time.Second))
}
