package batch

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Requests that wait while a batch is served are served together next, up
// to the limit by weight, and each is served once.
func TestServeGathersWhatWaits(t *testing.T) {
	in := make(chan int, 10)
	done := make(chan struct{})
	first, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		Serve(done, in, 5, func(r int) int { return r }, func(b []int) {
			mu.Lock()
			batches = append(batches, slices.Clone(b))
			n := len(batches)
			mu.Unlock()
			if n == 1 {
				close(first)
				<-release
			}
		})
	}()
	in <- 1
	<-first
	for _, r := range []int{2, 2, 2, 1} {
		in <- r
	}
	close(release)
	for {
		mu.Lock()
		var served []int
		for _, b := range batches {
			served = append(served, b...)
		}
		mu.Unlock()
		if len(served) == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(done)
	<-finished
	want := [][]int{{1}, {2, 2, 2}, {1}}
	if !slices.EqualFunc(batches, want, slices.Equal) {
		t.Errorf("batches %v, want %v: a lone request at once, then what waited, up to a weight of 5", batches, want)
	}
}
