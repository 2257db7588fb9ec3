// Package batch serves the requests of concurrent callers in batches, from
// one goroutine: a request that finds it idle is served at once, and those
// that arrive while it works are served together next. The stores use it to
// share one round trip, or one commit, among many callers.
package batch

// Serve takes a request from in, then the others already waiting while the
// batch weighs less than limit (weight says what a request weighs; nil
// counts one each), and passes the batch to do; it returns once done is
// closed. do must not keep the slice: it is reused.
func Serve[R any](done <-chan struct{}, in <-chan R, limit int, weight func(R) int, do func([]R)) {
	if weight == nil {
		weight = func(R) int { return 1 }
	}
	var batch []R
	for {
		batch = batch[:0]
		select {
		case <-done:
			return
		case r := <-in:
			batch = append(batch, r)
		}
		for n := weight(batch[0]); n < limit; {
			select {
			case r := <-in:
				batch = append(batch, r)
				n += weight(r)
				continue
			default:
			}
			break
		}
		do(batch)
	}
}
