package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

var runCommands = []subcommand{
	{"start", "start a run of a flow for a business key", runStart},
	{"get", "show one run: its status, steps, input and result", runGet},
	{"list", "list and search runs, newest first", runList},
	{"cancel", "cancel a run (its completed steps are compensated)", runCancel},
	{"signal", "send an external event to a run waiting for it", runSignal},
}

func runUsage(w io.Writer) {
	fmt.Fprint(w, `baton run: start, inspect and cancel the coordinator's runs

A run is one execution of a flow (the order flow, say) for one business key
(an order id). Starting a key the flow already has returns that run.

Usage:
  baton run <subcommand> [flags] [arguments]

Subcommands:
`)
	for _, c := range runCommands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every subcommand asks a baton server: --server URL (default BATON_SERVER, or
`+defaultServer+`) with --token (default BATON_TOKEN). With --data DIR it
works on a data directory instead: through the control socket of the baton
server that holds it, or, for get and list, directly on an idle one. With
--bus URL --store URL --namespace NAME (or BATON_BUS, BATON_STORE and
BATON_NAMESPACE), get and list read the runs from the store directly.
Run "baton run <subcommand> --help" for its flags.

Examples:
  baton run start order o-000001 --input '{"order_id":"o-000001","items":[{"sku":"SKU-PEN","qty":1}],"amount_cents":199}' --wait
  baton run list --status failed
  baton run get r-0123456789abcdef
  baton run cancel r-0123456789abcdef --reason "customer called"
`)
}

func runRun(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, args, "run", runCommands, runUsage)
}

// dispatch runs the subcommand args[0] of a command with subcommands.
func dispatch(ctx context.Context, e *env, args []string, name string, subs []subcommand, usage func(io.Writer)) error {
	names := make([]string, len(subs))
	for i, c := range subs {
		names[i] = c.name
	}
	if len(args) == 0 {
		usage(e.stderr)
		return usagef("%s: missing subcommand (%s)", name, strings.Join(names, ", "))
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return errHelp
	}
	for _, c := range subs {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	if strings.HasPrefix(args[0], "-") {
		return usagef("%s: give the subcommand before flags, not %s; see baton %s --help", name, args[0], name)
	}
	return usagef("%s: unknown subcommand %q; see baton %s --help", name, args[0], name)
}

// runSource is what get and list read runs from: a server's client, or a
// data directory opened directly.
type runSource interface {
	Run(ctx context.Context, id string) (store.Run, error)
	Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error)
	Close() error
}

var _ runSource = (*client.Client)(nil)

// directRuns reads the runs of an idle data directory, or of a store opened
// directly.
type directRuns struct{ Backend direct }

func (d directRuns) Run(ctx context.Context, id string) (store.Run, error) {
	return d.Backend.Run(ctx, id)
}

// Runs lists runs as a server does: without the runs of expectations.
func (d directRuns) Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	return flow.ListRuns(ctx, d.Backend, q)
}

func (d directRuns) Close() error { return d.Backend.Close() }

// openRuns returns the runs of the target; c is the client of a running
// server (over HTTP or its control socket), nil for an idle directory or a
// store opened directly.
func openRuns(ctx context.Context, t *target) (src runSource, c *client.Client, err error) {
	s, _, err := t.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch s := s.(type) {
	case *client.Client:
		return s, s, nil
	case direct:
		return directRuns{s}, nil, nil
	}
	s.Close()
	return nil, nil, fmt.Errorf("unexpected source %T", s)
}

// serverOf returns the client of a running server, or an error saying one
// is needed for what.
func serverOf(ctx context.Context, t *target, what string) (*client.Client, error) {
	if err := t.resolve(); err != nil {
		return nil, err
	}
	if t.brokers {
		return nil, fmt.Errorf("only a running baton server can %s, and --bus and --store are read directly: give --server URL (or %s) of a baton server on %s", what, envServer, t.where())
	}
	src, c, err := openRuns(ctx, t)
	if err != nil {
		return nil, err
	}
	if c == nil {
		src.Close()
		return nil, fmt.Errorf("no baton server holds %s, and only a running server can %s: start one (baton server --data %s), or give --server URL", t.dir, what, t.dir)
	}
	return c, nil
}

// hint is a command line to run next, naming the target when it is not
// the command's default.
func (t *target) hint(cmd string, args ...string) string {
	parts := []string{"baton", cmd}
	if f := t.flag(); f != "" && !(t.preferServer && t.url == defaultServer) {
		parts = append(parts, f)
	}
	return strings.Join(append(parts, args...), " ")
}

func runStart(ctx context.Context, e *env, args []string) error {
	f := newFlags("run start", "start a run of a flow for a business key", "[flags] FLOW KEY", `
Starts a run of FLOW (its latest version, or --version) for the business key
KEY, with --input as the run's input. The server validates the input against
the flow's schema and its own checks and answers at once: the run is
recorded and its first step dispatched. Starting a KEY the flow already has
returns the existing run, so a start can be retried safely.

With --wait it then follows the run until it ends, and exits 0 only when it
completed.`,
		`baton run start order o-000001 --input '{"order_id":"o-000001","items":[{"sku":"SKU-PEN","qty":1}],"amount_cents":199}'`,
		"baton run start order o-000002 --input @order.json --wait",
		"baton run start approval doc-7 --server https://baton.example.com --token $TOKEN")
	tgt := f.targetFlags(e, true)
	input := f.String("input", "", "the run's input: `JSON`, @FILE to read it from a file, or - for stdin (default: none)")
	version := f.Int("version", 0, "start version `N` of the flow (default 0: the latest)")
	wait := f.Bool("wait", false, "follow the run until it ends; exit 1 unless it completed")
	asJSON := f.Bool("json", false, "print the run as JSON")
	args, err := f.parseArgs(e, args, 2, 2, "FLOW and KEY")
	if err != nil {
		return err
	}
	if *version < 0 {
		return usagef("run start: --version %d: give 1 or more, or 0 for the latest", *version)
	}
	raw, err := readInput(*input)
	if err != nil {
		return usagef("run start: --input: %v", err)
	}
	c, err := serverOf(ctx, tgt, "start runs")
	if err != nil {
		return err
	}
	defer c.Close()
	run, created, err := c.StartRun(ctx, flow.StartRequest{Flow: args[0], Version: *version, Key: args[1], Input: raw})
	if err != nil {
		return tgt.explain(err)
	}
	if !*asJSON {
		if created {
			fmt.Fprintf(e.stdout, "started run %s of %s v%d for key %s: %s\n", run.ID, run.Flow, run.Version, run.Key, run.Status)
		} else {
			fmt.Fprintf(e.stdout, "the flow already has a run for key %s: %s (v%d), %s\n", run.Key, run.ID, run.Version, run.Status)
		}
	}
	if *wait {
		if run, err = follow(ctx, c, run); err != nil {
			return tgt.explain(err)
		}
		if !*asJSON {
			fmt.Fprintf(e.stdout, "run %s %s%s\n", run.ID, run.Status, errorSuffix(run))
		}
	}
	if *asJSON {
		if err := printJSON(e.stdout, run); err != nil {
			return err
		}
	} else if !*wait {
		fmt.Fprintf(e.stdout, "follow it: %s\n", tgt.hint("run get", run.ID))
	}
	if *wait && run.Status != store.RunCompleted {
		return errSilent
	}
	return nil
}

// readInput reads --input: JSON, @FILE or - for stdin.
func readInput(s string) (json.RawMessage, error) {
	var raw []byte
	switch {
	case s == "":
		return nil, nil
	case s == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, err
		}
		raw = b
	case strings.HasPrefix(s, "@"):
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, err
		}
		raw = b
	default:
		raw = []byte(s)
	}
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	return json.RawMessage(raw), nil
}

// followEvery is how often --wait asks for a run's status.
const followEvery = 100 * time.Millisecond

// follow polls a run until it ends or ctx does.
func follow(ctx context.Context, c *client.Client, run store.Run) (store.Run, error) {
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for !run.Status.Terminal() {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-t.C:
		}
		var err error
		if run, err = c.Run(ctx, run.ID); err != nil {
			return run, err
		}
	}
	return run, nil
}

func errorSuffix(r store.Run) string {
	if r.Error == "" {
		return ""
	}
	return ": " + r.Error
}

func runGet(ctx context.Context, e *env, args []string) error {
	f := newFlags("run get", "show one run: its status, steps, input and result", "[flags] RUN-ID", `
Prints the run's flow and version, business key, status (pending, running,
compensating, completed, failed, cancelled) and error, then one line per
step: its status, attempts, when it started (from the run's creation), how
long it took, and its error; then the input and the result.`,
		"baton run get r-0123456789abcdef",
		"baton run get --json r-0123456789abcdef | jq .steps",
		"baton run get --data ./baton-data r-0123456789abcdef")
	tgt := f.targetFlags(e, true)
	asJSON := f.Bool("json", false, "print the run as JSON")
	args, err := f.parseArgs(e, args, 1, 1, "RUN-ID (see baton run list)")
	if err != nil {
		return err
	}
	src, _, err := openRuns(ctx, tgt)
	if err != nil {
		return err
	}
	defer src.Close()
	run, err := src.Run(ctx, args[0])
	if err != nil {
		return tgt.explainNotFound(err, "run list")
	}
	if *asJSON {
		return printJSON(e.stdout, run)
	}
	return printRun(e.stdout, run)
}

func printRun(w io.Writer, r store.Run) error {
	rows := [][]string{
		{"run:", r.ID},
		{"flow:", fmt.Sprintf("%s v%d", r.Flow, r.Version)},
		{"key:", r.Key},
		{"status:", string(r.Status)},
	}
	if r.Error != "" {
		rows = append(rows, []string{"error:", oneLine(r.Error, 200)})
	}
	rows = append(rows,
		[]string{"created:", r.Created.Local().Format("2006-01-02 15:04:05.000 MST")},
		[]string{"updated:", r.Updated.Local().Format("2006-01-02 15:04:05.000 MST") + " (" + since(r.Updated.Sub(r.Created)) + ")"})
	if !r.Wake.IsZero() {
		rows = append(rows, []string{"wakes:", r.Wake.Local().Format("2006-01-02 15:04:05.000 MST")})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	if len(r.Steps) > 0 {
		names := make([]string, 0, len(r.Steps))
		for name := range r.Steps {
			names = append(names, name)
		}
		slices.SortFunc(names, func(a, b string) int {
			sa, sb := r.Steps[a], r.Steps[b]
			if c := sa.Started.Compare(sb.Started); c != 0 && !sa.Started.IsZero() && !sb.Started.IsZero() {
				return c
			}
			return strings.Compare(a, b)
		})
		steps := [][]string{{"STEP", "STATUS", "TRY", "STARTED", "TOOK", "ERROR"}}
		for _, name := range names {
			s := r.Steps[name]
			started, tookS, try := "", "", ""
			if !s.Started.IsZero() {
				started = since(s.Started.Sub(r.Created))
				if !s.Ended.IsZero() {
					tookS = took(max(s.Ended.Sub(s.Started), time.Nanosecond))
				}
			}
			if s.Attempts > 0 {
				try = "#" + strconv.Itoa(s.Attempts)
			}
			steps = append(steps, []string{name, string(s.Status), try, started, tookS, oneLine(s.Error, 100)})
		}
		fmt.Fprintln(w)
		if err := table(w, steps); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\ninput:  %s\n", compact(r.Input, 300))
	if len(r.Result) > 0 {
		fmt.Fprintf(w, "result: %s\n", compact(r.Result, 300))
	}
	return nil
}

// compact prints JSON on one line, cut at max runes.
func compact(raw json.RawMessage, max int) string {
	if len(raw) == 0 {
		return "none"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return oneLine(string(raw), max)
	}
	return oneLine(b.String(), max)
}

func runList(ctx context.Context, e *env, args []string) error {
	f := newFlags("run list", "list and search runs, newest first", "[flags]", `
Lists runs, newest first: id, flow and version, business key, status, when it
was created, and its error. --flow, --status, --key, --since and --until
narrow the list; they combine. --since and --until take an RFC 3339 time
(2026-01-02T15:04:05Z) or a duration before now (90m, 24h).`,
		"baton run list",
		"baton run list --flow order --status failed --since 24h",
		"baton run list --key o-000017",
		"baton run list --data ./baton-data --limit 20 --after r-0123456789abcdef")
	tgt := f.targetFlags(e, true)
	flowName := f.String("flow", "", "only runs of the flow `NAME`")
	status := f.String("status", "", "only runs in `STATUS`: pending, running, compensating, completed, failed or cancelled")
	key := f.String("key", "", "only the runs of the business key `KEY`")
	sinceS := f.String("since", "", "only runs created at or after `TIME` (RFC 3339, or a duration before now)")
	untilS := f.String("until", "", "only runs created before `TIME` (RFC 3339, or a duration before now)")
	limit := f.Int("limit", 50, "list at most `N` runs (up to 1000)")
	after := f.String("after", "", "list the runs after the run `ID` (to page)")
	asJSON := f.Bool("json", false, "print the runs as JSON")
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	q := store.RunQuery{Flow: *flowName, Key: *key, After: *after, Status: store.RunStatus(*status)}
	if *limit < 1 || *limit > 999 {
		return usagef("run list: --limit %d: give 1 to 999", *limit)
	}
	q.Limit = *limit + 1 // one more, to know whether there are more
	if *status != "" && !slices.Contains([]store.RunStatus{store.RunPending, store.RunRunning, store.RunCompensating, store.RunCompleted, store.RunFailed, store.RunCancelled}, q.Status) {
		return usagef("run list: --status %q: give pending, running, compensating, completed, failed or cancelled", *status)
	}
	now := time.Now()
	var err error
	if q.Since, err = timeFlag(*sinceS, now); err != nil {
		return usagef("run list: --since %q: %v", *sinceS, err)
	}
	if q.Until, err = timeFlag(*untilS, now); err != nil {
		return usagef("run list: --until %q: %v", *untilS, err)
	}
	src, _, err := openRuns(ctx, tgt)
	if err != nil {
		return err
	}
	defer src.Close()
	runs, err := src.Runs(ctx, q)
	if err != nil {
		return tgt.explain(err)
	}
	more := len(runs) > *limit
	runs = runs[:min(len(runs), *limit)]
	if done, err := printEmpty(e.stdout, runs, *asJSON, "runs"); done {
		return err
	}
	rows := [][]string{{"ID", "FLOW", "KEY", "STATUS", "CREATED", "ERROR"}}
	for _, r := range runs {
		rows = append(rows, []string{r.ID, fmt.Sprintf("%s v%d", r.Flow, r.Version), r.Key, string(r.Status),
			r.Created.Local().Format("2006-01-02 15:04:05"), oneLine(r.Error, 80)})
	}
	if err := table(e.stdout, rows); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(e.stdout, "more: %s\n", tgt.hint("run list", append(listFlags(f, "after"), "--after", runs[len(runs)-1].ID)...))
	}
	return nil
}

// listFlags repeats the flags the user set, but skip and the target's.
func listFlags(f *flags, skip string) []string {
	var out []string
	f.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case skip, "server", "data", "token", "bus", "store", "namespace":
			return
		}
		out = append(out, "--"+fl.Name, quoteArg(fl.Value.String()))
	})
	return out
}

func quoteArg(s string) string {
	if s == "" || strings.ContainsAny(s, " \t'\"$`\\|&;<>()*?") {
		return strconv.Quote(s)
	}
	return s
}

// timeFlag reads an RFC 3339 time, or a duration before now.
func timeFlag(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration before now (90m, 24h)")
}

func runCancel(ctx context.Context, e *env, args []string) error {
	f := newFlags("run cancel", "cancel a run (its completed steps are compensated)", "[flags] RUN-ID", `
Cancels a run that has not ended: the steps under way are abandoned, the
completed ones are compensated in reverse order (a payment refunded, say),
and the run ends cancelled with the reason. A run that already ended is left
as it is, and the command fails.`,
		"baton run cancel r-0123456789abcdef",
		`baton run cancel r-0123456789abcdef --reason "customer called"`)
	tgt := f.targetFlags(e, true)
	reason := f.String("reason", "", `why, recorded as the run's error (default "cancelled on request")`)
	asJSON := f.Bool("json", false, "print the run as JSON")
	args, err := f.parseArgs(e, args, 1, 1, "RUN-ID (see baton run list)")
	if err != nil {
		return err
	}
	c, err := serverOf(ctx, tgt, "cancel runs")
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.CancelRun(ctx, args[0], *reason)
	if err != nil {
		return tgt.explain(err)
	}
	if *asJSON {
		return printJSON(e.stdout, run)
	}
	fmt.Fprintf(e.stdout, "cancelled run %s of %s for key %s: %s%s\n", run.ID, run.Flow, run.Key, run.Status, errorSuffix(run))
	return nil
}

func runSignal(ctx context.Context, e *env, args []string) error {
	f := newFlags("run signal", "send an external event to a run waiting for it", "[flags] RUN-ID TYPE", `
Delivers an event of TYPE (name.vN) with --payload as its data to a run whose flow waits
for that type (a wait step): the step completes with the data as its
result, and the run goes on. A run not waiting for TYPE is left as it is,
and the command fails.`,
		`baton run signal r-0123456789abcdef approval.granted.v1 --payload '{"by":"ana"}'`)
	tgt := f.targetFlags(e, true)
	payload := f.String("payload", "", "the event's data: `JSON`, @FILE, or - for stdin (default: none)")
	asJSON := f.Bool("json", false, "print the run as JSON")
	args, err := f.parseArgs(e, args, 2, 2, "RUN-ID and TYPE")
	if err != nil {
		return err
	}
	raw, err := readInput(*payload)
	if err != nil {
		return usagef("run signal: --payload: %v", err)
	}
	c, err := serverOf(ctx, tgt, "signal runs")
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.SignalRun(ctx, args[0], baton.Event{Type: args[1], Data: raw})
	if err != nil {
		return tgt.explain(err)
	}
	if *asJSON {
		return printJSON(e.stdout, run)
	}
	fmt.Fprintf(e.stdout, "delivered %s to run %s: %s\n", args[1], run.ID, run.Status)
	return nil
}
