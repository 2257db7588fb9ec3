package bench

import (
	"testing"

	"github.com/batonhq/baton/bench/internal/cpuacct"
)

// reportGoCPU reports the CPU seconds per 1,000 units (orders, events) the
// benchmark's process used since cpu0, as cpu-go-s/1k: the embedded
// benchmarks have no other process to account for, and their throughput
// on a shared machine moves with the load more than their CPU per unit.
func reportGoCPU(b *testing.B, cpu0 cpuacct.Sample, units int) {
	if units > 0 {
		b.ReportMetric(cpuacct.Take().Sub(cpu0).Go.Seconds()*1000/float64(units), "cpu-go-s/1k")
	}
}
