// Command moderation runs the content-moderation example: a scraper, a
// moderator and an orchestrator. It starts a local test site, generates a
// flow from the site's page list, fetches the pages concurrently with one
// session (cookie jar) per worker, has a rule-based moderator service judge
// them, and prints the report.
//
//	go run ./examples/moderation
//	go run ./examples/moderation --workers 5
//
// Everything runs in this process, on loopback, with the embedded backend
// in a temporary directory. See package moderate.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/batonhq/baton/examples/moderation/moderate"
)

func main() {
	workers := flag.Int("workers", 3, "workers fetching pages at once, each with its own session")
	flag.Parse()
	if err := run(*workers); err != nil {
		fmt.Fprintln(os.Stderr, "moderation:", err)
		os.Exit(1)
	}
}

func run(workers int) error {
	dir, err := os.MkdirTemp("", "baton-moderation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	out, err := moderate.Run(ctx, moderate.Config{Dir: dir, Workers: workers})
	if err != nil {
		return err
	}
	out.Print(os.Stdout)
	return nil
}
