// Command shipping runs the shipping service until SIGTERM, on the
// backends BATON_BUS and BATON_STORE name, serving health, stats and the
// API on ADDR when it is set.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/examples/shipping"
	"github.com/batonhq/baton/runner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := backend.Open(ctx, backend.FromEnv(os.Getenv))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store,
		Services: []baton.Service{shipping.Service()}, Addr: os.Getenv("ADDR")})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
