package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

var scheduleCommands = []subcommand{
	{"list", "list the schedules", scheduleList},
	{"pause", "stop a schedule from firing", schedulePause},
	{"resume", "let a paused schedule fire again", scheduleResume},
}

func scheduleUsage(w io.Writer) {
	fmt.Fprint(w, `baton schedule: list, pause and resume schedules

A schedule starts a flow on a cron expression or at a fixed interval, once
per tick even with several coordinators. Create and replace them with the
API (POST /v1/schedules, see docs/api.md) or the Go client.

Usage:
  baton schedule <subcommand> [flags] [NAME]

Subcommands:
`)
	for _, c := range scheduleCommands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every subcommand asks a baton server: --server URL (default BATON_SERVER, or
`+defaultServer+`) with --token (default BATON_TOKEN). With --data DIR it
works on a data directory instead: through the control socket of the baton
server that holds it, or directly on an idle one (a pause then holds from
the server's next start). Run "baton schedule <subcommand> --help" for its
flags.

Examples:
  baton schedule list
  baton schedule pause nightly-report
  baton schedule resume nightly-report --server http://127.0.0.1:7070
`)
}

func runSchedule(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, args, "schedule", scheduleCommands, scheduleUsage)
}

// schedules is what the schedule commands need: a server's client, or the
// scheduler of an idle data directory.
type schedules interface {
	Schedules(ctx context.Context) ([]store.Schedule, error)
	PauseSchedule(ctx context.Context, name string) (store.Schedule, error)
	ResumeSchedule(ctx context.Context, name string) (store.Schedule, error)
	Close() error
}

// directSchedules changes the schedules of an idle data directory, as the
// scheduler of a server would.
type directSchedules struct {
	s     *flow.Scheduler
	close func() error
}

func (d directSchedules) Schedules(ctx context.Context) ([]store.Schedule, error) {
	return d.s.List(ctx)
}

func (d directSchedules) PauseSchedule(ctx context.Context, name string) (store.Schedule, error) {
	return d.s.Pause(ctx, name)
}

func (d directSchedules) ResumeSchedule(ctx context.Context, name string) (store.Schedule, error) {
	return d.s.Resume(ctx, name)
}

func (d directSchedules) Close() error { return d.close() }

func openSchedules(ctx context.Context, t *target) (schedules, error) {
	src, c, err := openRuns(ctx, t)
	if err != nil {
		return nil, err
	}
	if c != nil {
		return c, nil
	}
	b := src.(directRuns).Backend
	// Never started: it only changes schedules, and starts no runs.
	s, err := flow.NewScheduler(flow.SchedulerConfig{Store: b, Starter: flow.StartFunc(
		func(context.Context, flow.StartRequest) (store.Run, bool, error) {
			return store.Run{}, false, errors.New("no coordinator here")
		})})
	if err != nil {
		b.Close()
		return nil, err
	}
	return directSchedules{s: s, close: b.Close}, nil
}

func scheduleList(ctx context.Context, e *env, args []string) error {
	f := newFlags("schedule list", "list the schedules", "[flags]", `
Lists every schedule by name: the flow it starts, when (a cron expression or
"every D"), its overlap policy (what a tick does while the previous run is
still going: skip, buffer_one, allow), whether it is paused, the last tick
it handled and the last run it started.`,
		"baton schedule list",
		"baton schedule list --json",
		"baton schedule list --data ./baton-data")
	tgt := f.targetFlags(e, true)
	asJSON := f.Bool("json", false, "print the schedules as JSON")
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	src, err := openSchedules(ctx, tgt)
	if err != nil {
		return err
	}
	defer src.Close()
	list, err := src.Schedules(ctx)
	if err != nil {
		return tgt.explain(err)
	}
	if done, err := printEmpty(e.stdout, list, *asJSON, "schedules"); done {
		return err
	}
	rows := [][]string{{"NAME", "FLOW", "WHEN", "OVERLAP", "STATE", "LAST TICK", "LAST RUN"}}
	for _, s := range list {
		rows = append(rows, []string{s.Name, s.Flow, when(s), string(s.Overlap), state(s), tickTime(s.LastTick), s.LastRun})
	}
	return table(e.stdout, rows)
}

func when(s store.Schedule) string {
	if s.Cron != "" {
		return s.Cron
	}
	return "every " + s.Every.String()
}

func state(s store.Schedule) string {
	switch {
	case s.Paused:
		return "paused"
	case s.Buffered:
		return "buffered"
	}
	return "active"
}

func tickTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func schedulePause(ctx context.Context, e *env, args []string) error {
	f := newFlags("schedule pause", "stop a schedule from firing", "[flags] NAME", `
Pauses a schedule: its ticks start no runs until it is resumed; the runs it
started go on. On resume, the ticks missed meanwhile are treated like those
of a downtime: at most the schedule's catch-up limit of them start runs.`,
		"baton schedule pause nightly-report")
	return scheduleSet(ctx, e, args, f, "paused", func(ctx context.Context, s schedules, name string) (store.Schedule, error) {
		return s.PauseSchedule(ctx, name)
	})
}

func scheduleResume(ctx context.Context, e *env, args []string) error {
	f := newFlags("schedule resume", "let a paused schedule fire again", "[flags] NAME", `
Resumes a paused schedule: its next tick starts a run, and of the ticks
missed while it was paused, at most its catch-up limit start runs.`,
		"baton schedule resume nightly-report")
	return scheduleSet(ctx, e, args, f, "resumed", func(ctx context.Context, s schedules, name string) (store.Schedule, error) {
		return s.ResumeSchedule(ctx, name)
	})
}

func scheduleSet(ctx context.Context, e *env, args []string, f *flags, done string,
	do func(context.Context, schedules, string) (store.Schedule, error)) error {
	tgt := f.targetFlags(e, true)
	args, err := f.parseArgs(e, args, 1, 1, "the schedule's NAME (see baton schedule list)")
	if err != nil {
		return err
	}
	src, err := openSchedules(ctx, tgt)
	if err != nil {
		return err
	}
	defer src.Close()
	s, err := do(ctx, src, args[0])
	if err != nil {
		return tgt.explainNotFound(err, "schedule list")
	}
	fmt.Fprintf(e.stdout, "%s schedule %s (%s, %s): %s\n", done, s.Name, s.Flow, when(s), state(s))
	return nil
}
