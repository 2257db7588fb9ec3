package runner_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/runner"
)

// greeter is a service of one handler: it answers user.signed_up.v1 with
// user.greeted.v1.
func greeter(greeted chan<- string) baton.Service {
	return baton.Service{Name: "greeter", Handlers: []baton.Handler{{
		Type: "user.signed_up.v1",
		Func: func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
			var u struct {
				Name string `json:"name"`
			}
			if err := e.Decode(&u); err != nil {
				return nil, baton.Permanent(err)
			}
			if greeted != nil {
				greeted <- "hello, " + u.Name
			}
			out, err := baton.NewEvent("user.greeted.v1", e.Subject, map[string]string{"greeting": "hello, " + u.Name})
			return []baton.Event{out}, err
		},
	}}}
}

// A service of one's own on the embedded backend: open the backends, run
// the service, publish an event to it. A program would call Run(ctx)
// instead of Start and Stop, with a ctx that SIGTERM ends.
func Example() {
	dir, _ := os.MkdirTemp("", "runner-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := backend.Open(ctx, backend.Config{Data: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	greeted := make(chan string, 1)
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store,
		Services: []baton.Service{greeter(greeted)}})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		log.Fatal(err)
	}
	e, _ := baton.NewEvent("user.signed_up.v1", "u-1", map[string]string{"name": "Ada"})
	if err := r.Publish(ctx, e); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-greeted)
	if err := r.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("handled:", r.Stats().Handled)
	// Output:
	// hello, Ada
	// handled: 1
}

// A flow of one's own: the coordinator sends the step to the service (here
// in the same process; in another, list it in Remote) and the run
// completes with the step's reply.
func Example_flow() {
	dir, _ := os.MkdirTemp("", "runner-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	b, err := backend.Open(ctx, backend.Config{Data: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	welcome := flow.Flow{Name: "welcome", Version: 1, Steps: []flow.Step{
		{Name: "greet", Send: &flow.Send{Type: "user.signed_up.v1"}},
	}}
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store,
		Services: []baton.Service{greeter(nil)}, Flows: []flow.Flow{welcome}})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer r.Stop(ctx)
	run, _, err := r.Coordinator().StartRun(ctx, flow.StartRequest{Flow: "welcome", Key: "u-2", Input: []byte(`{"name":"Grace"}`)})
	if err != nil {
		log.Fatal(err)
	}
	for !run.Status.Terminal() {
		time.Sleep(10 * time.Millisecond)
		if run, err = r.Coordinator().Run(ctx, run.ID); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(run.Status, string(run.Result))
	// Output:
	// completed {"greeting":"hello, Grace"}
}
