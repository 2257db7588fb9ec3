// Package apitest serves Baton's HTTP API for the tests of its clients (the
// Go client, the CLI): the order services, and a coordinator running the
// order flow and a flow that waits for a signal, on the embedded backend in
// memory, behind an httptest server.
package apitest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/examples/orders/orchestration"
	"github.com/batonhq/baton/flow"
)

// Server is the API and what it runs on.
type Server struct {
	*httptest.Server
	Backend *embedded.Backend
	Ledger  *orders.Ledger // the order services' effects
}

// Start serves the API, asking for one of tokens when any are given; it is
// stopped when t ends. The flow that waits is "approval", whose one step
// waits for approval.granted.v1.
func Start(t testing.TB, tokens ...string) *Server {
	t.Helper()
	ctx := context.Background()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	ledger, _ := orders.NewLedger("")
	services := orders.Services(ledger, orders.Faults{})
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if err := rt.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	wait := flow.Flow{Name: "approval", Version: 1, Steps: []flow.Step{{Name: "approve", Wait: &flow.Wait{Type: "approval.granted.v1"}}}}
	co, err := flow.New(flow.Config{Store: b, Transport: b, Services: services, Flows: []flow.Flow{orchestration.Flow(), wait}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := flow.NewScheduler(flow.SchedulerConfig{Store: b, Starter: co})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := co.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Store: b, Transport: b, Coordinator: co, Scheduler: sched, Publisher: rt, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		co.Stop(ctx)
		rt.Stop(ctx)
		b.Close()
	})
	return &Server{Server: srv, Backend: b, Ledger: ledger}
}
