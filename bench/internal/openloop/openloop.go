// Package openloop offers a fixed load on a schedule that does not wait for
// the system under test: order i is due at start + i/rate, and its latency
// counts from then, so a stall delays every order due during it and shows in
// the percentiles (no coordinated omission).
package openloop

import (
	"slices"
	"sync"
	"time"
)

// Schedule is when each send is due.
type Schedule struct {
	Start time.Time
	Every time.Duration
}

// Due is when send i is due.
func (s Schedule) Due(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Every) }

// Drive calls send(i, due) for i in [0, n), each at or after its due time, from
// senders goroutines (a send may block, as a publish awaiting its confirm
// does; a late send is made at once, its due time unchanged). It returns the
// schedule and when the last send returned.
func Drive(n int, rate float64, senders int, send func(i int, due time.Time)) (Schedule, time.Time) {
	s := Schedule{Start: time.Now().Add(10 * time.Millisecond), Every: time.Duration(float64(time.Second) / rate)}
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range next {
				due := s.Due(i)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				send(i, due)
			}
		})
	}
	wg.Wait()
	return s, time.Now()
}

// Percentiles are the p50, p99 and p99.9 of ls, sorted in place.
func Percentiles(ls []time.Duration) (p50, p99, p999 time.Duration) {
	if len(ls) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ls)
	at := func(q float64) time.Duration { return ls[min(len(ls)-1, int(q*float64(len(ls))))] }
	return at(0.50), at(0.99), at(0.999)
}
