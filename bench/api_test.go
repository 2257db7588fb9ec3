package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/examples/orders"
)

// BenchmarkAPIStart starts b.N order runs through the HTTP API (POST
// /v1/runs over loopback, 64 clients at once) and reports starts/s. Each
// start is validated against the flow's input schema and recorded with its
// first step's command in one durable write. The services and the
// coordinator are not running, so the figure is the API's alone: the
// commands wait in the payment service's queue.
func BenchmarkAPIStart(b *testing.B) {
	f := openFlow(b, b.N, true)
	h, err := api.New(api.Config{Store: f.b, Transport: f.b, Coordinator: f.co})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		o := orders.NewOrder(i)
		in, _ := json.Marshal(o)
		bodies[i], _ = json.Marshal(map[string]any{"flow": "order", "key": o.OrderID, "input": json.RawMessage(in)})
	}
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				resp, err := client.Post(srv.URL+"/v1/runs", "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Error(fmt.Sprintf("start %d: %s", i, resp.Status))
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "starts/s")
}
