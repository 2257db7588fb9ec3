// Package cpuacct reads the CPU time of the benchmark's own process and of
// the servers it uses on this machine (RabbitMQ's beam.smp, redis-server),
// so that a benchmark can report CPU seconds per unit of work for every
// process: where the broker, the store and the services share two cores,
// throughput follows their total CPU, and the Go process's figure alone
// hides what a design costs the broker.
//
// The servers are found by their process names in /proc, read only. They
// serve whatever else runs on the machine too (other test suites), so their
// figures are an upper bound on the benchmark's share.
package cpuacct

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sample is the CPU time (user and system) used so far by this process and
// by every process named beam.smp or redis-server.
type Sample struct {
	Go, Rabbit, Redis time.Duration
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// Take reads a Sample now.
func Take() Sample {
	var s Sample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.Go = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(comm)) {
		case "beam.smp":
			s.Rabbit += procCPU(d)
		case "redis-server":
			s.Redis += procCPU(d)
		}
	}
	return s
}

// procCPU is utime + stime from dir/stat (fields 14 and 15, counted after
// the command name, which is in parentheses and may hold spaces).
func procCPU(dir string) time.Duration {
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * clockTick
}

// Sub is the CPU time each process used between s0 and s.
func (s Sample) Sub(s0 Sample) Sample {
	return Sample{Go: s.Go - s0.Go, Rabbit: s.Rabbit - s0.Rabbit, Redis: s.Redis - s0.Redis}
}

// Reporter is what testing.B offers to report a metric.
type Reporter interface{ ReportMetric(n float64, unit string) }

// Report reports the CPU seconds per 1,000 units (orders, events) each
// process used in d: cpu-go-s/1k, cpu-rabbit-s/1k, cpu-redis-s/1k, and their
// total.
func Report(b Reporter, d Sample, units int) {
	if units <= 0 {
		return
	}
	per := func(t time.Duration) float64 { return t.Seconds() * 1000 / float64(units) }
	b.ReportMetric(per(d.Go), "cpu-go-s/1k")
	b.ReportMetric(per(d.Rabbit), "cpu-rabbit-s/1k")
	b.ReportMetric(per(d.Redis), "cpu-redis-s/1k")
	b.ReportMetric(per(d.Go+d.Rabbit+d.Redis), "cpu-total-s/1k")
}
