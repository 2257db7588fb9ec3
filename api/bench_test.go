package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/flow"
)

// BenchmarkStartRun measures starts through the HTTP API, from the Go
// client over loopback, on the embedded backend in a directory (each start
// is a durable write): a flow whose one step waits, so that only the starts
// are measured. Report: starts/s.
//
//	go test ./api -run '^$' -bench StartRun -benchtime 20000x
func BenchmarkStartRun(b *testing.B) {
	ctx := context.Background()
	be, err := embedded.Open(embedded.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	co, err := flow.New(flow.Config{Store: be, Transport: be, Flows: []flow.Flow{approvalFlow()}})
	if err != nil {
		b.Fatal(err)
	}
	if err := co.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer co.Stop(ctx)
	h, err := api.New(api.Config{Store: be, Transport: be, Coordinator: co})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	c := client.New(srv.URL, &http.Client{Transport: tr})
	defer c.Close()
	input := json.RawMessage(`{"doc":"d"}`)
	var n atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS concurrent clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := fmt.Sprintf("doc-%d", n.Add(1))
			if _, created, err := c.StartRun(ctx, flow.StartRequest{Flow: "approval", Key: key, Input: input}); err != nil || !created {
				b.Errorf("start %s: %v (created %v)", key, err, created)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "starts/s")
}
