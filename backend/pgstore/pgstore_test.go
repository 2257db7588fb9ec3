package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/pgstore"
	"github.com/batonhq/baton/conformance"
	"github.com/batonhq/baton/store"
	"github.com/jackc/pgx/v5"
)

var quiet = slog.New(slog.DiscardHandler)

const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func serverURL() string {
	if u := os.Getenv("BATON_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultURL
}

var reach struct {
	once sync.Once
	err  error
}

// needServer skips the test when PostgreSQL is not reachable, or fails it
// in CI, where the service must be there.
func needServer(t testing.TB) string {
	t.Helper()
	url := serverURL()
	reach.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			reach.err = err
			return
		}
		reach.err = conn.Ping(ctx)
		conn.Close(ctx)
	})
	if reach.err != nil {
		msg := "PostgreSQL is not reachable at " + url + " (set BATON_POSTGRES_URL to use another server; start the local one with " +
			"`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): " + reach.err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return url
}

func uniqueSchema(t testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "baton_test_" + hex.EncodeToString(b)
}

// dropSchema removes a test's schema when it ends.
func dropSchema(t testing.TB, url, schema string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
}

// open returns a store in a new schema, dropped when the test ends.
func open(t testing.TB) *pgstore.Store {
	t.Helper()
	st, _, _ := openSchema(t)
	return st
}

// openSchema is open, and says where the store is: the server's URL and
// the schema.
func openSchema(t testing.TB) (st *pgstore.Store, url, schema string) {
	t.Helper()
	url = needServer(t)
	schema = uniqueSchema(t)
	dropSchema(t, url, schema)
	// A small dead-letter cap, so that the suite can fill it.
	st, err := pgstore.Open(t.Context(), pgstore.Config{URL: url, Schema: schema, Logger: quiet, Retention: store.Retention{DeadCap: 20}})
	if err != nil {
		t.Fatalf("open store in schema %s: %v", schema, err)
	}
	t.Cleanup(func() { st.Close() })
	return st, url, schema
}

func TestConformance(t *testing.T) {
	needServer(t)
	conformance.TestStore(t, conformance.Features{}, func(t *testing.T) store.Store { return open(t) })
}

// TestMigrateDropsTimers: the timers table, which backed a store.Timers
// that nothing called, is gone once the migrations have run.
func TestMigrateDropsTimers(t *testing.T) {
	_, url, schema := openSchema(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var table *string
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1)::text", pgx.Identifier{schema, "timers"}.Sanitize()).Scan(&table); err != nil {
		t.Fatalf("look for the timers table: %v", err)
	}
	if table != nil {
		t.Errorf("schema %s still has the table %s after Open; migration 0003_drop_timers should have dropped it", schema, *table)
	}
}

// TestMigrate: Opens racing on a new schema, and an Open of a migrated
// one, apply each migration once and leave a working store.
func TestMigrate(t *testing.T) {
	url := needServer(t)
	schema := uniqueSchema(t)
	dropSchema(t, url, schema)
	ctx := t.Context()

	const racers = 4
	stores := make([]*pgstore.Store, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			stores[i], errs[i] = pgstore.Open(ctx, pgstore.Config{URL: url, Schema: schema, Logger: quiet})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d of a new schema: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	again, err := pgstore.Open(ctx, pgstore.Config{URL: url, Schema: schema, Logger: quiet})
	if err != nil {
		t.Fatalf("Open of a migrated schema: %v", err)
	}
	t.Cleanup(func() { again.Close() })

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT version FROM "+pgx.Identifier{schema}.Sanitize()+".schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != len(entries) {
		t.Fatalf("schema_migrations holds %q after %d concurrent Opens and one more; want each of the %d migrations once", versions, racers, len(entries))
	}

	// Every store works on the one set of tables.
	group, id := "billing", "ev-1"
	if err := stores[0].MarkSeen(ctx, group, id); err != nil {
		t.Fatalf("mark seen: %v", err)
	}
	for i, st := range append(stores, again) {
		if ok, err := st.Seen(ctx, group, id); err != nil || !ok {
			t.Errorf("store %d: seen %v, err %v; want the mark made through store 0", i, ok, err)
		}
	}
}

// TestUnreachable: a server that is not there is a clear, unavailable
// error naming the URL without its password.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	url := "postgres://baton:s3cret@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"
	st, err := pgstore.Open(t.Context(), pgstore.Config{URL: url})
	if err == nil {
		st.Close()
		t.Fatal("Open of 127.0.0.1:1 succeeded; want an error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach PostgreSQL at postgres://baton@127.0.0.1:1/test") {
		t.Errorf("error %q does not say which server it could not reach", msg)
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q shows the password", msg)
	}
	if code := baton.ErrorCode(err); code != baton.Unavailable {
		t.Errorf("error code %q, want %q", code, baton.Unavailable)
	}
}

// TestConfig: a missing or malformed URL is invalid, without a connection.
func TestConfig(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "postgres://u:pw@127.0.0.1:5432/test?sslmode=nonsense"} {
		st, err := pgstore.Open(t.Context(), pgstore.Config{URL: url})
		if err == nil {
			st.Close()
			t.Errorf("Open with URL %q succeeded; want an invalid error", url)
			continue
		}
		if code := baton.ErrorCode(err); code != baton.Invalid {
			t.Errorf("Open with URL %q: %v (code %q), want code %q", url, err, code, baton.Invalid)
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("error %q shows the password", err)
		}
	}
}

// TestCreateRunRace: coordinators creating the run of one flow and key at
// once (two processes handling the same start) get one run between them,
// and only its messages are in the outbox.
func TestCreateRunRace(t *testing.T) {
	st := open(t)
	ctx := t.Context()
	const racers = 8
	at := time.Now().UTC().Truncate(time.Millisecond)
	type result struct {
		run     store.Run
		created bool
		err     error
	}
	results := make([]result, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			r := store.Run{ID: "run-" + string(rune('a'+i)), Flow: "order", Key: "ORDER-1", Status: store.RunPending, Created: at, Updated: at}
			out := []store.Outbound{{Group: "billing", Type: "order.charge.v1", ID: "msg-" + r.ID, Body: []byte(`{}`)}}
			<-start
			got, created, err := st.CreateRun(ctx, r, out)
			results[i] = result{got, created, err}
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("racer %d: %v", i, r.err)
		}
		if r.created {
			if winner != "" {
				t.Fatalf("runs %s and %s both created for one flow and key", winner, r.run.ID)
			}
			winner = r.run.ID
		}
	}
	if winner == "" {
		t.Fatal("no racer created the run")
	}
	for i, r := range results {
		if r.run.ID != winner || r.run.Rev != 1 {
			t.Errorf("racer %d got run %s rev %d; want the created run %s rev 1", i, r.run.ID, r.run.Rev, winner)
		}
	}
	p, err := st.ClaimOutbound(ctx, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].Outbound.ID != "msg-"+winner {
		t.Errorf("outbox after the race: %+v; want the one message of %s", p, winner)
	}
}

// TestErrorCodes: what PostgreSQL refuses and a closed store have Baton's
// codes.
func TestErrorCodes(t *testing.T) {
	st := open(t)
	ctx := t.Context()
	at := time.Now()
	r := store.Run{ID: "run-1", Flow: "order", Key: "ORDER-1", Status: store.RunPending, Created: at,
		Input: []byte("{\"note\": \"\xff\"}")} // valid JSON to encoding/json, not UTF-8
	_, _, err := st.CreateRun(ctx, r, nil)
	if code := baton.ErrorCode(err); code != baton.Invalid {
		t.Errorf("CreateRun with invalid UTF-8 in its input: %v (code %q), want code %q", err, code, baton.Invalid)
	}
	r.Input = []byte(`{"note": "fine"}`)
	if _, _, err := st.CreateRun(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	r.Flow, r.Key = "other", "ORDER-2"
	_, _, err = st.CreateRun(ctx, r, nil)
	if code := baton.ErrorCode(err); code != baton.Conflict {
		t.Errorf("CreateRun of an id taken under another flow: %v (code %q), want code %q", err, code, baton.Conflict)
	}

	st.Close()
	_, err = st.Run(ctx, "run-1")
	if code := baton.ErrorCode(err); code != baton.Unavailable {
		t.Errorf("Run on a closed store: %v (code %q), want code %q", err, code, baton.Unavailable)
	}
	_, err = st.Seen(ctx, "billing", "ev-1")
	if code := baton.ErrorCode(err); code != baton.Unavailable {
		t.Errorf("Seen on a closed store: %v (code %q), want code %q", err, code, baton.Unavailable)
	}
}

// TestSeenConcurrent: many Seens at once, gathered into shared lookups,
// each get their own answer: marked or not, live or expired, in their
// group and not in another.
func TestSeenConcurrent(t *testing.T) {
	st, url, schema := openSchema(t)
	ctx := t.Context()
	// Marks made through this one expire at once.
	brief, err := pgstore.Open(ctx, pgstore.Config{URL: url, Schema: schema, Logger: quiet, InboxRetention: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { brief.Close() })

	type query struct {
		group, id string
		want      bool
	}
	const ids = 300
	var queries []query
	for i := range ids {
		id := fmt.Sprint("ev-", i)
		switch i % 4 {
		case 0: // marked by billing only
			if err := st.MarkSeen(ctx, "billing", id); err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{"billing", id, true}, query{"shipping", id, false})
		case 1: // marked by both
			for _, g := range []string{"billing", "shipping"} {
				if err := st.MarkSeen(ctx, g, id); err != nil {
					t.Fatal(err)
				}
			}
			queries = append(queries, query{"billing", id, true}, query{"shipping", id, true})
		case 2: // marked, expired
			if err := brief.MarkSeen(ctx, "billing", id); err != nil {
				t.Fatal(err)
			}
			queries = append(queries, query{"billing", id, false})
		case 3: // never marked
			queries = append(queries, query{"billing", id, false}, query{"shipping", id, false})
		}
	}

	const rounds = 5 // each query asked this many times at once
	start := make(chan struct{})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range rounds {
		for _, q := range queries {
			wg.Go(func() {
				<-start
				got, err := st.Seen(ctx, q.group, q.id)
				if err != nil || got != q.want {
					if wrong.Add(1) <= 10 {
						t.Errorf("Seen(%s, %s) = %v, %v; want %v", q.group, q.id, got, err, q.want)
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d of %d concurrent Seens answered wrong", n, rounds*len(queries))
	}
}

// TestSeenBlocked: while the inbox cannot be read (a lock held by another
// session), a Seen whose context ends returns its context's error, and
// Close returns and releases the Seens waiting.
func TestSeenBlocked(t *testing.T) {
	st, url, schema := openSchema(t)
	ctx := t.Context()

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Seen(cancelled, "billing", "ev-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Seen with a cancelled context: %v, want %v", err, context.Canceled)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	held.Store(true)
	release := sync.OnceFunc(func() {
		held.Store(false)
		tx.Rollback(context.Background())
	})
	defer release()
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, "inbox"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// A safety net: the assertions below say what went wrong rather than
	// the test hanging.
	net := time.AfterFunc(time.Minute, release)
	defer net.Stop()

	// Seens that occupy the inbox reader and wait behind it.
	const waiting = 20
	errs := make(chan error, waiting)
	for i := range waiting {
		go func() {
			_, err := st.Seen(ctx, "billing", fmt.Sprint("ev-", i))
			errs <- err
		}()
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = st.Seen(short, "billing", "ev-1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Seen whose context ended while the inbox was locked: %v, want %v", err, context.DeadlineExceeded)
	}
	if !held.Load() {
		t.Errorf("Seen whose context ended returned only once the inbox lock was released")
	}

	st.Close()
	if !held.Load() {
		t.Errorf("Close returned only once the inbox lock was released")
	}
	for range waiting {
		if err := <-errs; baton.ErrorCode(err) != baton.Unavailable {
			t.Errorf("Seen waiting when the store closed: %v (code %q), want code %q", err, baton.ErrorCode(err), baton.Unavailable)
		}
	}
	if !held.Load() {
		t.Errorf("Seens waiting returned only once the inbox lock was released")
	}
}

// TestSeenPlan: the plan PostgreSQL keeps for the lookup of many marks,
// made while the inbox is empty (as in a new schema), probes the primary
// key per mark rather than reading the inbox, which would take longer as
// the inbox grows, at every lookup.
func TestSeenPlan(t *testing.T) {
	st := open(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Prepare(ctx, "seen_many", pgstore.SeenQuery(st)); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE seen_many('{billing,billing}', '{ev-1,ev-2}', now())")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "Index Scan using inbox_pkey") || strings.Contains(plan, "Hash") || strings.Contains(plan, "Seq Scan") {
		t.Errorf("generic plan of the inbox lookup does not probe the primary key per mark:\n%s", plan)
	}
}

// BenchmarkSaveRun: transitions of distinct runs, each with one outbound
// message, from parallel goroutines (coordinators).
func BenchmarkSaveRun(b *testing.B) {
	st := open(b)
	ctx := b.Context()
	var n atomicCounter
	b.RunParallel(func(pb *testing.PB) {
		at := time.Now()
		r, _, err := st.CreateRun(ctx, store.Run{ID: fmt.Sprint("run-", n.next()), Flow: "order", Key: fmt.Sprint("key-", n.next()),
			Status: store.RunPending, Created: at, Input: []byte(`{"order":"ORDER-1","amount":12.5}`)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for pb.Next() {
			r.Status = store.RunRunning
			r.Updated = time.Now()
			r, err = st.SaveRun(ctx, r, []store.Outbound{{Group: "billing", Type: "order.charge.v1", ID: fmt.Sprint("msg-", n.next()), Body: []byte(`{"x":1}`)}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppend: journal entries appended one at a time from parallel
// goroutines: the advisory lock orders them.
func BenchmarkAppend(b *testing.B) {
	st := open(b)
	ctx := b.Context()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := st.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "corr-1", Outcome: store.Handled, EventID: "ev", Group: "billing"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSeen: inbox checks from many goroutines at once (handlers of
// several consumer groups), half of them of marked events.
func BenchmarkSeen(b *testing.B) {
	st := open(b)
	ctx := b.Context()
	const marked = 1000
	for i := range marked {
		if err := st.MarkSeen(ctx, "billing", fmt.Sprint("ev-", i)); err != nil {
			b.Fatal(err)
		}
	}
	var n atomicCounter
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.next() % (2 * marked)
			seen, err := st.Seen(ctx, "billing", fmt.Sprint("ev-", i))
			if err != nil {
				b.Fatal(err)
			}
			if seen != (i < marked) {
				b.Fatalf("ev-%d seen %v", i, seen)
			}
		}
	})
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.n.Add(1) }
