// Command baton runs and inspects Baton: a demo of the order services on the
// embedded backend, a server running them under a coordinator with the HTTP
// API, runs and schedules, the timeline of one business transaction, the
// dead-letter queues, and a live tail of the journal.
//
// Every command that reads a data directory works both on an idle directory
// (it opens it) and on one a running baton demo or server holds (it asks that
// process over the control socket DIR/baton.sock); with --server URL it asks
// a server's API instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is one of baton's commands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command writes to and reads from, so tests can run commands
// in-process.
type env struct {
	stdout, stderr io.Writer
	// tty reports whether stderr is a terminal, for progress redrawn in place.
	tty bool
	// getenv reads the environment (BATON_SERVER, BATON_TOKEN, ...); nil
	// reads nothing, so tests do not depend on the caller's.
	getenv func(string) string
	// defaultLog makes the command's logger slog's default too: the binary
	// sets it; tests that run commands side by side leave it unset.
	defaultLog bool

	// logs is how the command logs, and log its logger writing to stderr;
	// both are set when its flags are parsed.
	logs logConfig
	log  *slog.Logger
}

func (e *env) env(key string) string {
	if e.getenv == nil {
		return ""
	}
	return e.getenv(key)
}

var commands []command

func init() {
	commands = []command{
		{"demo", "run the order services (either style, any backend) and place orders", runDemo},
		{"status", "show the timeline of one order (any correlation id)", runStatus},
		{"dlq", "list, show, replay and drop dead letters", runDLQ},
		{"tail", "print journal entries as they are written", runTail},
		{"map", "draw which services consume and emit which events, from the journal", runMap},
		{"server", "run the coordinator and the HTTP API for your flows (--demo: the order flow)", runServer},
		{"worker", "run the demo's order services in their own process", runWorker},
		{"run", "start, inspect and cancel runs of flows", runRun},
		{"schedule", "list, pause and resume schedules", runSchedule},
		{"namespace", "delete a namespace from a broker and a database", runNamespace},
		{"version", "print the module version and the commit baton was built from", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := &env{stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stderr), getenv: os.Getenv, defaultLog: true}
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// run runs the command named by args[0] and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		mainUsage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			return run(ctx, e, append(args[1:], "--help"))
		}
		mainUsage(e.stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return exitCode(e, c.run(ctx, e, args[1:]))
		}
	}
	if len(name) > 0 && name[0] == '-' {
		fmt.Fprintf(e.stderr, "baton: unknown flag %s; see baton --help\n", name)
	} else {
		fmt.Fprintf(e.stderr, "baton: unknown command %q; see baton --help\n", name)
	}
	return exitUsage
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// silentError ends a command with exit status 1 when the command already said
// why.
var errSilent = errors.New("")

// errHelp ends a command that printed its help on request.
var errHelp = errors.New("help")

func exitCode(e *env, err error) int {
	var u *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &u):
		fmt.Fprintln(e.stderr, "baton "+u.msg)
		return exitUsage
	case errors.Is(err, errSilent):
		return exitFail
	}
	fmt.Fprintln(e.stderr, "baton: "+err.Error())
	return exitFail
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, `Baton coordinates microservices: services written once as handlers, run
under choreography (each reacts to events) or orchestration (a coordinator),
with durable messages, retries, dead letters and a journal of every step.

Usage:
  baton <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "baton <command> --help" for a command's flags and examples. Every
command takes --log-level debug|info|warn|error and --log-format text|json
(or BATON_LOG_LEVEL and BATON_LOG_FORMAT); logs go to stderr.

Examples:
  baton demo                                  # 1000 orders, in a temporary directory
  baton demo --data ./baton-data --keep --fail-rate 0.2
  baton status --data ./baton-data o-000017   # where is order 17, and why did it stop
  baton dlq list --data ./baton-data
  baton tail --data ./baton-data
  baton server --flows flows.yaml             # coordinator + API on http://127.0.0.1:7070
  baton server --demo                         # the same, with the order flow and services
  baton run start order o-000001 --input @order.json --wait
  baton run list --status failed
  baton schedule list
  baton namespace delete baton --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0 --yes
`)
}
