package expect

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/store"
)

// metrics are the watcher's Prometheus collectors; a nil *metrics records
// nothing.
type metrics struct {
	brokenTotal *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, s store.Runs, xs []Expectation) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{brokenTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "baton_expectations_broken_total",
		Help: "Instances of a declared expectation this process found broken: the awaited event did not come in time.",
	}, []string{"expectation"})}
	for _, x := range xs {
		m.brokenTotal.WithLabelValues(x.Name)
	}
	open := &openBroken{store: s, xs: xs, desc: prometheus.NewDesc("baton_expectations_open_broken",
		"Instances of a declared expectation broken and not met since, in the whole store (every process reports the same count).",
		[]string{"expectation"}, nil)}
	for _, c := range []prometheus.Collector{m.brokenTotal, open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) broken(name string) {
	if m != nil {
		m.brokenTotal.WithLabelValues(name).Inc()
	}
}

// openBroken counts, at each scrape, the runs of each expectation that are
// broken (store.RunFailed) and not met since: a count the store keeps, so
// that it goes down whichever watcher clears an instance.
type openBroken struct {
	store store.Runs
	xs    []Expectation
	desc  *prometheus.Desc
}

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 5 * time.Second

func (o *openBroken) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *openBroken) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for _, x := range o.xs {
		n, err := o.count(ctx, x)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(o.desc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(n), x.Name)
	}
}

func (o *openBroken) count(ctx context.Context, x Expectation) (int, error) {
	n, after := 0, ""
	for {
		page, err := o.store.ListRuns(ctx, store.RunQuery{Flow: x.flowName(), Status: store.RunFailed, After: after, Limit: 500})
		if err != nil {
			return 0, err
		}
		n += len(page)
		if len(page) < 500 {
			return n, nil
		}
		after = page[len(page)-1].ID
	}
}
