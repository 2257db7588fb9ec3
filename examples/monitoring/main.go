// Command monitoring runs the monitoring example: a flow scheduled every
// second reads a fake sensor over HTTP, a storage service converts, checks
// and stores each reading, and readings over the threshold raise an alert
// through the notifier. It prints each stored reading and alert, and a
// summary at the end.
//
//	go run ./examples/monitoring
//	go run ./examples/monitoring --duration 30s --threshold 78
//	go run ./examples/monitoring --cron '*/5 * * * *' --duration 1h   # every five minutes
//
// Everything runs in this process, on loopback, with the embedded backend
// in a temporary directory (or --data DIR, kept). See package monitor.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/batonhq/baton/examples/monitoring/monitor"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("duration", 10*time.Second, "how long to run (Ctrl-C stops earlier)")
	every := flag.Duration("every", time.Second, "how often to read the sensor (at least 1s)")
	cron := flag.String("cron", "", `a cron expression to read the sensor on instead, e.g. "* * * * *" (every minute)`)
	threshold := flag.Float64("threshold", 80, "alert over this temperature, in °C")
	data := flag.String("data", "", "data directory to keep (default: a temporary one, removed at exit)")
	flag.Parse()

	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "baton-monitoring-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := monitor.Start(ctx, monitor.Config{Dir: dir, Threshold: *threshold, Every: *every, Cron: *cron})
	if err != nil {
		return err
	}
	when := "every " + every.String()
	if *cron != "" {
		when = "on cron " + *cron
	}
	fmt.Printf("monitoring %s at %s %s for %v; alert over %g °C; data in %s\n\n",
		m.Sensor.Name(), m.SensorURL, when, *duration, *threshold, dir)

	timer := time.NewTimer(*duration)
	defer timer.Stop()
loop:
	for {
		select {
		case e, ok := <-m.Events():
			if !ok {
				break loop
			}
			fmt.Println(e)
		case <-timer.C:
			break loop
		case <-ctx.Done():
			break loop
		}
	}

	// Stop lets the runs under way finish; the events they give are
	// printed until Stop closes the stream.
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(stopCtx) }()
	for e := range m.Events() {
		fmt.Println(e)
	}
	if err := <-stopped; err != nil {
		return err
	}
	s := m.Summary()
	fmt.Printf("\nsummary: %d readings stored, %d over %g °C, %d alerts, %d runs failed\n",
		s.Stored, s.Over, *threshold, s.Alerts, s.Failed)
	if *data != "" {
		fmt.Printf("readings: %s/readings.jsonl\n", dir)
	}
	return nil
}
