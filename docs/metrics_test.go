package docs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
)

// recorder is a registry that keeps the descriptions of what is registered
// on it, whether or not a collector has recorded anything yet.
type recorder struct {
	*prometheus.Registry
	descs []*prometheus.Desc
}

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return r.Registry.Register(c)
}

// plainTransport is the embedded transport seen as a broker: not a
// Committer, so that the coordinator may be given a store of its own.
type plainTransport struct{ flow.Transport }

// countingStore is the embedded store with an outbox count, so that the
// coordinator registers the outbox metric as it does on PostgreSQL and
// Redis.
type countingStore struct{ *embedded.Backend }

func (countingStore) CountOutbound(context.Context) (int64, error) { return 0, nil }

// descFields reads what a Desc's String shows: its name, help and labels.
var descFields = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}\}$`)

// metric is a row of the table in observability.md.
type metric struct{ labels, help string }

// kindOf is the kind a metric's name says, by Prometheus's conventions as
// Baton follows them: counters end in _total, histograms (of durations) in
// _seconds, and the others are gauges.
func kindOf(name string) string {
	switch {
	case strings.HasSuffix(name, "_total"):
		return "counter"
	case strings.HasSuffix(name, "_seconds"):
		return "histogram"
	}
	return "gauge"
}

// Every metric the runtime, the coordinator, the scheduler and the
// notification hub and the expectations' watcher register is in docs/observability.md's table, with its
// labels and its help text, and the table has no other.
func TestObservabilityListsEveryMetric(t *testing.T) {
	t.Parallel()
	emb, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	reg := &recorder{Registry: prometheus.NewRegistry()}
	if _, err := bus.New(bus.Config{Transport: emb, Store: emb, Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	co, err := flow.New(flow.Config{Store: countingStore{emb}, Transport: plainTransport{emb}, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flow.NewScheduler(flow.SchedulerConfig{Store: emb, Starter: co, Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.New(notify.Config{Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	x := expect.Expectation{Name: "x", After: []string{"order.paid.v1"}, Want: []string{"order.shipped.v1"}, Within: time.Minute}
	if _, err := expect.New(expect.Config{Store: emb, Transport: emb, Expectations: []expect.Expectation{x}, Metrics: reg}); err != nil {
		t.Fatal(err)
	}

	code := map[string]metric{}
	for _, d := range reg.descs {
		m := descFields.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		name, _ := strconv.Unquote(m[1])
		help, _ := strconv.Unquote(m[2])
		code[name] = metric{labels: strings.ReplaceAll(m[3], ",", ", "), help: help}
	}

	b, err := os.ReadFile("observability.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]metric{}
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "| `baton_") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 4 {
			t.Errorf("a row of the metrics table without 4 cells: %s", line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		doc[name] = metric{labels: strings.TrimSpace(cells[2]), help: strings.TrimSpace(cells[3])}
		if kind := strings.TrimSpace(cells[1]); kind != kindOf(name) {
			t.Errorf("%s is a %s in observability.md's table; its name says %s", name, kind, kindOf(name))
		}
	}

	names := slices.Sorted(func(yield func(string) bool) {
		for n := range code {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		c := code[name]
		d, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("%s is registered but not in observability.md's table; add:\n| `%s` | %s | %s | %s |", name, name, kindOf(name), c.labels, c.help)
		case d != c:
			t.Errorf("%s in observability.md's table:\n  labels %q, help %q\nin the code:\n  labels %q, help %q", name, d.labels, d.help, c.labels, c.help)
		}
	}
	for name := range doc {
		if _, ok := code[name]; !ok {
			t.Errorf("%s is in observability.md's table but nothing registers it", name)
		}
	}
}

// indented returns the block indented by four spaces that begins with the
// line first, unindented.
func indented(t *testing.T, doc, first string) string {
	t.Helper()
	i := strings.Index(doc, "    "+first+"\n")
	if i < 0 {
		t.Fatalf("observability.md has no block beginning %q", first)
	}
	var out []string
	for line := range strings.Lines(doc[i:]) {
		if line != "\n" && !strings.HasPrefix(line, "    ") {
			break
		}
		out = append(out, strings.TrimPrefix(line, "    "))
	}
	return strings.Join(out, "")
}

// The scrape configuration and the alert rules of observability.md are
// what Prometheus's promtool accepts.
func TestObservabilityPrometheusFiles(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool is not installed (apt-get install prometheus; .ci/run installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b, err := os.ReadFile("observability.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []struct{ first, file, check string }{
		{"scrape_configs:", "prometheus.yml", "config"},
		{"groups:", "rules.yml", "rules"},
	} {
		path := filepath.Join(dir, f.file)
		if err := os.WriteFile(path, []byte(indented(t, string(b), f.first)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "check", f.check, path).CombinedOutput(); err != nil {
			t.Errorf("promtool check %s on observability.md's %s: %v\n%s", f.check, f.first, err, out)
		}
	}
}
