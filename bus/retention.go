package bus

import (
	"github.com/batonhq/baton/store"
	"github.com/prometheus/client_golang/prometheus"
)

// swept reports, when scraped, what the retention sweeps of a
// store.Sweeper removed since it was opened.
type swept struct {
	s    store.Sweeper
	desc *prometheus.Desc
}

func newSwept(s store.Sweeper) *swept {
	return &swept{s: s, desc: prometheus.NewDesc("baton_retention_removed_total",
		"What the store's retention sweeps removed since it was opened, by kind (journal entries, ended runs, dead letters past the age, dead letters over the cap).",
		[]string{"kind"}, nil)}
}

func (s *swept) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

func (s *swept) Collect(ch chan<- prometheus.Metric) {
	t := s.s.Swept()
	for _, kv := range []struct {
		kind string
		n    int
	}{{"journal", t.Journal}, {"runs", t.Runs}, {"dead_letters", t.Dead}, {"dead_letters_over_cap", t.DeadOverCap}} {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(kv.n), kv.kind)
	}
}
