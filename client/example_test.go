package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// A client of the API served over an embedded backend: what it returns is
// what the store holds, and a remote error keeps its code.
func Example() {
	b, _ := embedded.Open(embedded.Config{Memory: true})
	defer b.Close()
	srv := httptest.NewServer(api.NewHandler(b, b))
	defer srv.Close()

	ctx := context.Background()
	b.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "o-000017", Outcome: store.Published,
		EventID: "place-o-000017", EventType: "order.placed.v1"})

	c := client.New(srv.URL, nil)
	h, _ := c.History(ctx, "o-000017")
	fmt.Println(len(h), h[0].Outcome, h[0].EventType)

	_, err := c.Dead(ctx, "42")
	fmt.Println(baton.ErrorCode(err), errors.Is(err, baton.ErrNotFound))
	// Output:
	// 1 published order.placed.v1
	// not_found true
}

// Starting a run through the API: the first start creates it (202), the
// same key again returns it (200), and a refused start says why.
func ExampleClient_StartRun() {
	b, _ := embedded.Open(embedded.Config{Memory: true})
	defer b.Close()
	approval := flow.Flow{Name: "approval", Version: 1,
		InputSchema: json.RawMessage(`{"type": "object", "required": ["doc"]}`),
		Steps:       []flow.Step{{Name: "approve", Wait: &flow.Wait{Type: "approval.granted.v1"}}}}
	co, _ := flow.New(flow.Config{Store: b, Transport: b, Flows: []flow.Flow{approval}})
	ctx := context.Background()
	co.Start(ctx)
	defer co.Stop(ctx)
	h, _ := api.New(api.Config{Store: b, Transport: b, Coordinator: co, Tokens: []string{"s3cret-0123456789"}})
	srv := httptest.NewServer(h)
	defer srv.Close()

	c := client.New(srv.URL, nil, client.WithToken("s3cret-0123456789"))
	req := flow.StartRequest{Flow: "approval", Key: "doc-7", Input: json.RawMessage(`{"doc": "doc-7"}`)}
	first, created, _ := c.StartRun(ctx, req)
	fmt.Println(created, first.Status)
	again, created, _ := c.StartRun(ctx, req)
	fmt.Println(created, again.ID == first.ID)

	_, _, err := c.StartRun(ctx, flow.StartRequest{Flow: "approval", Key: "doc-8", Input: json.RawMessage(`{}`)})
	fmt.Println(baton.ErrorCode(err))
	// Output:
	// true running
	// false true
	// invalid
}
