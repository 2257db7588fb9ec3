package bench

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/bench/internal/cpuacct"
	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkPebbleQueue is SingleHop's peer: the plainest durable queue one
// would write on pebble directly, with the embedded backend's memtable and
// cache sizes. b.N messages of about 1 KiB (the same JSON data as SingleHop's
// events, encoded once) are published from four publishers in batches of
// 100, each batch one fsynced write under sequence-number keys; 32 consumers
// read each message back from pebble and delete it with a fsynced single
// delete (pebble group-commits concurrent fsyncs, as it does for the
// embedded backend). events/s is from the first publish to the last delete
// being durable. It has no envelope, no inbox, no journal, no retries: what
// it costs is the floor under SingleHop.
//
//	go test -run '^$' -bench 'SingleHop|PebbleQueue' -benchtime 30000x ./bench
func BenchmarkPebbleQueue(b *testing.B) {
	cache := pebble.NewCache(128 << 20)
	defer cache.Unref()
	db, err := pebble.Open(b.TempDir(), &pebble.Options{MemTableSize: 64 << 20, MemTableStopWritesThreshold: 4, Cache: cache, Logger: quietPebble{b}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	body, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 900)})
	var seq atomic.Uint64
	ready := make(chan []byte, 4096) // keys of committed messages
	var deleted atomic.Int64
	done := make(chan struct{})
	var consumers sync.WaitGroup
	for range 32 {
		consumers.Go(func() {
			for k := range ready {
				v, closer, err := db.Get(k)
				if err != nil {
					b.Error(err)
					return
				}
				_ = v
				closer.Close()
				if err := db.SingleDelete(k, pebble.Sync); err != nil {
					b.Error(err)
					return
				}
				if deleted.Add(1) == int64(b.N) {
					close(done)
				}
			}
		})
	}
	defer func() {
		close(ready)
		consumers.Wait()
	}()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuacct.Take()
	var wg sync.WaitGroup
	const publishers, batch = 4, 100
	for p := range publishers {
		wg.Go(func() {
			for i := p * batch; i < b.N; i += publishers * batch {
				n := min(batch, b.N-i)
				first := seq.Add(uint64(n)) - uint64(n)
				wb := db.NewBatch()
				keys := make([][]byte, n)
				for j := range n {
					keys[j] = binary.BigEndian.AppendUint64([]byte("q/"), first+uint64(j))
					wb.Set(keys[j], body, nil)
				}
				if err := wb.Commit(pebble.Sync); err != nil {
					b.Error(err)
					return
				}
				wb.Close()
				for _, k := range keys {
					ready <- k
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d deleted", deleted.Load(), b.N)
	}
	reportGoCPU(b, cpu0, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// quietPebble drops pebble's informational lines and fails on its errors.
type quietPebble struct{ tb testing.TB }

func (quietPebble) Infof(format string, args ...any) {}

func (q quietPebble) Errorf(format string, args ...any) { q.tb.Errorf("pebble: "+format, args...) }

func (q quietPebble) Fatalf(format string, args ...any) { q.tb.Fatalf("pebble: "+format, args...) }
