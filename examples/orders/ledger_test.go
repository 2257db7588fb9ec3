package orders_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/orders"
)

func TestLedgerIdempotentAndDuplicates(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	record := func(order, effect, key string) {
		t.Helper()
		if err := l.Record(order, effect, key); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		record("o-1", "charged", "e-1")
	}
	record("o-2", "charged", "e-2")
	record("o-2", "refunded", "e-3")
	if n := l.Count("o-1", "charged"); n != 1 {
		t.Errorf("the same key three times counts %d effects, want 1", n)
	}
	if n := l.Calls("charged"); n != 4 {
		t.Errorf("Calls(charged) = %d, want 4", n)
	}
	if dups := l.Duplicates(); dups != nil {
		t.Errorf("Duplicates = %q before any", dups)
	}

	record("o-1", "charged", "e-9")
	if n := l.Count("o-1", "charged"); n != 2 {
		t.Errorf("a second key counts %d effects, want 2", n)
	}
	if got, want := l.Duplicates(), []string{"order o-1: charged 2 times"}; !slices.Equal(got, want) {
		t.Errorf("Duplicates = %q, want %q", got, want)
	}
	if got := l.Totals(); !mapsEqual(got, map[string]int{"charged": 2, "refunded": 1}) {
		t.Errorf("Totals = %v", got)
	}
	if got := l.Orders("charged"); !slices.Equal(got, []string{"o-1", "o-2"}) {
		t.Errorf("Orders(charged) = %v", got)
	}
	if got := l.Orders("reserved"); len(got) != 0 {
		t.Errorf("Orders(reserved) = %v", got)
	}
	if n := l.Count("o-3", "charged"); n != 0 {
		t.Errorf("Count of an unknown order = %d", n)
	}

	for _, args := range [][3]string{{"", "charged", "k"}, {"o-1", "", "k"}, {"o-1", "charged", ""}} {
		err := l.Record(args[0], args[1], args[2])
		if baton.ErrorCode(err) != baton.Invalid {
			t.Errorf("Record%q = %v, want an invalid error", args, err)
		}
	}
}

func TestLedgerClose(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", filepath.Join(t.TempDir(), "ledger.jsonl")} {
		l, err := orders.NewLedger(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Record("o-1", "charged", "e-1"); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Record("o-1", "charged", "e-2"); err == nil {
			t.Errorf("path %q: Record after Close succeeded", path)
		}
		if n := l.Count("o-1", "charged"); n != 1 {
			t.Errorf("path %q: Count after Close = %d", path, n)
		}
		if err := l.Close(); err != nil {
			t.Errorf("path %q: second Close: %v", path, err)
		}
	}
}

func openLedger(t testing.TB, path string) *orders.Ledger {
	t.Helper()
	l, err := orders.NewLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLedgerFileSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openLedger(t, path)
	for _, r := range [][3]string{
		{"o-1", "charged", "e-1"},
		{"o-1", "charged", "e-1"}, // a redelivery
		{"o-1", "reserved", "e-2"},
		{"o-2", "charged", "e-3"},
		{"o-2", "charged", "e-4"}, // a duplicate
	} {
		if err := l.Record(r[0], r[1], r[2]); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLedger(t, path)
	defer l.Close()
	if got := l.Totals(); !mapsEqual(got, map[string]int{"charged": 2, "reserved": 1}) {
		t.Errorf("Totals after reopen = %v", got)
	}
	if n := l.Calls("charged"); n != 4 {
		t.Errorf("Calls(charged) after reopen = %d, want 4", n)
	}
	if got, want := l.Duplicates(), []string{"order o-2: charged 2 times"}; !slices.Equal(got, want) {
		t.Errorf("Duplicates after reopen = %q, want %q", got, want)
	}
	// Keys are remembered: a redelivery after the restart is still a no-op.
	if err := l.Record("o-1", "charged", "e-1"); err != nil {
		t.Fatal(err)
	}
	if n := l.Count("o-1", "charged"); n != 1 {
		t.Errorf("a key recorded before reopening counts again: %d", n)
	}
}

func TestLedgerDropsTornLastLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openLedger(t, path)
	if err := l.Record("o-1", "charged", "e-1"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	appendFile(t, path, `{"order":"o-2","effect":"char`)

	l = openLedger(t, path)
	if got := l.Totals(); !mapsEqual(got, map[string]int{"charged": 1}) {
		t.Errorf("Totals with a torn last line = %v", got)
	}
	if err := l.Record("o-3", "charged", "e-3"); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l = openLedger(t, path)
	defer l.Close()
	if got := l.Orders("charged"); !slices.Equal(got, []string{"o-1", "o-3"}) {
		t.Errorf("after a torn line and a new record: Orders = %v", got)
	}
}

func TestLedgerRefusesCorruptLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(path, []byte(`{"order":"o-1","effect":"charged","key":"e-1"}`+"\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := orders.NewLedger(path); err == nil {
		l.Close()
		t.Fatal("opened a ledger with a corrupt line")
	}
}

func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// A record is in the file once Record returns, even if the process is
// killed right after.
func TestLedgerSurvivesSIGKILL(t *testing.T) {
	const records = 500
	if path := os.Getenv("ORDERS_LEDGER_KILL"); path != "" {
		l, err := orders.NewLedger(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for i := range records {
			if err := l.Record("o-"+strconv.Itoa(i), "charged", "e-"+strconv.Itoa(i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
		self, _ := os.FindProcess(os.Getpid())
		self.Kill() // no Close, no flush: SIGKILL
		select {}
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLedgerSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "ORDERS_LEDGER_KILL="+path)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.Exited() {
		t.Fatalf("child: %v, want killed by a signal\n%s", err, out)
	}
	l := openLedger(t, path)
	defer l.Close()
	if got := l.Totals()["charged"]; got != records {
		t.Errorf("%d orders charged after SIGKILL, want %d", got, records)
	}
}

func TestLedgerConcurrentRecord(t *testing.T) {
	t.Parallel()
	const workers, perWorker = 16, 300
	for _, mode := range []string{"memory", "file"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			path := ""
			if mode == "file" {
				path = filepath.Join(t.TempDir(), "ledger.jsonl")
			}
			l := openLedger(t, path)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						// Everyone records the shared key; each its own.
						shared := "o-" + strconv.Itoa(i)
						if err := l.Record(shared, "charged", "e-"+strconv.Itoa(i)); err != nil {
							t.Error(err)
							return
						}
						if err := l.Record(shared, "reserved", fmt.Sprintf("w%d-%d", w, i)); err != nil {
							t.Error(err)
							return
						}
						_ = l.Count(shared, "charged")
						if i%50 == 0 { // readers race with writers too
							_ = l.Duplicates()
							_ = l.Orders("charged")
						}
					}
				})
			}
			wg.Wait()
			check := func(l *orders.Ledger, when string) {
				if got := l.Totals(); !mapsEqual(got, map[string]int{"charged": perWorker, "reserved": perWorker}) {
					t.Errorf("%s: Totals = %v", when, got)
				}
				if n := l.Calls("charged"); n != workers*perWorker {
					t.Errorf("%s: Calls(charged) = %d, want %d", when, n, workers*perWorker)
				}
				if n := l.Count("o-7", "charged"); n != 1 {
					t.Errorf("%s: o-7 charged %d times, want 1", when, n)
				}
				if n := l.Count("o-7", "reserved"); n != workers {
					t.Errorf("%s: o-7 reserved %d times, want %d", when, n, workers)
				}
				if n := len(l.Duplicates()); n != perWorker {
					t.Errorf("%s: %d duplicates, want %d", when, n, perWorker)
				}
			}
			check(l, "live")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if path != "" {
				l = openLedger(t, path)
				defer l.Close()
				check(l, "reopened")
			}
		})
	}
}

func BenchmarkLedgerRecord(b *testing.B) {
	for _, mode := range []string{"memory", "file"} {
		b.Run(mode, func(b *testing.B) {
			path := ""
			if mode == "file" {
				path = filepath.Join(b.TempDir(), "ledger.jsonl")
			}
			l := openLedger(b, path)
			defer l.Close()
			var next sync.Mutex
			n := 0
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					next.Lock()
					n++
					i := n
					next.Unlock()
					id := strconv.Itoa(i)
					if err := l.Record("o-"+id, "charged", "e-"+id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
