package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

type subcommand struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) error
}

var dlqCommands = []subcommand{
	{"list", "list dead letters, oldest first", dlqList},
	{"show", "show one dead letter, body included", dlqShow},
	{"replay", "deliver dead letters again and remove them", dlqReplay},
	{"drop", "delete dead letters", dlqDrop},
}

func dlqUsage(w io.Writer) {
	fmt.Fprint(w, `baton dlq: inspect, replay and drop dead letters

A consumer group dead-letters an event it gave up on: retries spent, a
permanent error, a panic, a message that cannot be decoded, a storm of events.
Each dead letter keeps the message as received, the group, the attempts and the
reason.

Usage:
  baton dlq <subcommand> [flags] [ID]

Subcommands:
`)
	for _, c := range dlqCommands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every subcommand takes --data DIR (default baton-data), works on a running
baton demo's or server's directory through its control socket and on an idle
one directly; with --bus URL --store URL --namespace NAME (or BATON_BUS,
BATON_STORE and BATON_NAMESPACE) it works on a broker and a database
directly (a replay goes to the group's queue, for its services to handle);
or, with --server URL (and --token), asks a baton server's API.
Run "baton dlq <subcommand> --help" for its flags.

Examples:
  baton dlq list --data ./baton-data
  baton dlq show --data ./baton-data 1234
  baton dlq replay --data ./baton-data --all
  baton dlq list --server http://127.0.0.1:7070
  baton dlq replay --bus amqp://guest:guest@127.0.0.1:5672/ --store postgres://postgres@127.0.0.1:5432/test --all
`)
}

func runDLQ(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, args, "dlq", dlqCommands, dlqUsage)
}

// page is how many dead letters are read at a time.
const page = 500

func dlqList(ctx context.Context, e *env, args []string) error {
	f := newFlags("dlq list", "list dead letters, oldest first", "[flags]", `
Columns: the dead letter's id (for show, replay and drop), when it was
dead-lettered, the group, the business transaction (correlation id), the event
type and id, the attempts made, and the reason.`,
		"baton dlq list --data ./baton-data",
		"baton dlq list --data ./baton-data --limit 20 --after 1234",
		"baton dlq list --server http://127.0.0.1:7070")
	tgt := f.targetFlags(e, false)
	limit := f.Int("limit", 100, "list at most `N` dead letters")
	after := f.String("after", "", "list those after the dead letter `ID` (to page)")
	asJSON := f.Bool("json", false, "print the dead letters as JSON")
	wide := f.Bool("wide", false, "show event ids whole (default: the part that tells them apart)")
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	if *limit < 1 {
		return usagef("dlq list: --limit %d: give 1 or more", *limit)
	}
	src, _, err := tgt.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	var dead []store.DeadLetter
	cursor := *after
	for len(dead) < *limit+1 {
		got, err := src.ListDead(ctx, cursor, min(page, *limit+1-len(dead)))
		if err != nil {
			return tgt.explain(err)
		}
		dead = append(dead, got...)
		if len(got) == 0 {
			break
		}
		cursor = got[len(got)-1].ID
	}
	more := len(dead) > *limit
	dead = dead[:min(len(dead), *limit)]
	if done, err := printEmpty(e.stdout, dead, *asJSON, "dead letters"); done {
		return err
	}
	rows := [][]string{{"ID", "TIME", "GROUP", "CORRELATION", "TYPE", "EVENT", "ATTEMPTS", "REASON"}}
	for _, d := range dead {
		rows = append(rows, []string{d.ID, d.Time.Local().Format("15:04:05.000"), d.Group,
			d.CorrelationID, d.Type, idFormat(*wide)(d.EventID), strconv.Itoa(d.Attempts), oneLine(d.Reason, 100)})
	}
	if err := table(e.stdout, rows); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(e.stdout, "more: %s\n", tgt.hint("dlq list", "--after", dead[len(dead)-1].ID))
	}
	return nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func dlqShow(ctx context.Context, e *env, args []string) error {
	f := newFlags("dlq show", "show one dead letter, body included", "[flags] ID", `
Prints every field of the dead letter, then its body: pretty-printed when it is
JSON (a CloudEvents envelope, as Baton writes them), as received otherwise.`,
		"baton dlq show --data ./baton-data 1234")
	tgt := f.targetFlags(e, false)
	asJSON := f.Bool("json", false, "print the dead letter as JSON (the body base64-encoded)")
	args, err := f.parseArgs(e, args, 1, 1, "the dead letter's ID (see baton dlq list)")
	if err != nil {
		return err
	}
	src, _, err := tgt.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	d, err := src.Dead(ctx, args[0])
	if err != nil {
		return tgt.explainNotFound(err, "dlq list")
	}
	if *asJSON {
		return printJSON(e.stdout, d)
	}
	var rows [][]string
	for _, kv := range [][2]string{
		{"id", d.ID},
		{"time", d.Time.Local().Format("2006-01-02 15:04:05.000 MST")},
		{"group", d.Group},
		{"type", d.Type},
		{"event id", d.EventID},
		{"correlation id", d.CorrelationID},
		{"attempts", fmt.Sprint(d.Attempts)},
		{"reason", d.Reason},
	} {
		rows = append(rows, []string{kv[0] + ":", kv[1]})
	}
	if len(d.Meta) > 0 {
		// A flow step's command: the coordinator it answers, its run and
		// step.
		meta := make([]string, 0, len(d.Meta))
		for _, k := range slices.Sorted(maps.Keys(d.Meta)) {
			meta = append(meta, k+"="+d.Meta[k])
		}
		rows = append(rows, []string{"metadata:", strings.Join(meta, " ")})
	}
	if err := table(e.stdout, rows); err != nil {
		return err
	}
	if d.Truncated {
		// Cut by the store: what is left is not the message, and a replay
		// is refused.
		fmt.Fprintf(e.stdout, "body (truncated: the first %d of %d bytes; it cannot be replayed):\n%s\n", len(d.Body), d.Size, d.Body)
		return nil
	}
	fmt.Fprintf(e.stdout, "body (%d bytes):\n%s\n", len(d.Body), body(d.Body))
	return nil
}

// body is a dead letter's body, indented when it is JSON.
func body(b []byte) string {
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}

// allIDs lists every dead letter there is now; those added later, such as a
// replay dead-lettered again, are not included.
func allIDs(ctx context.Context, src source) ([]string, error) {
	var ids []string
	cursor := ""
	for {
		got, err := src.ListDead(ctx, cursor, page)
		if err != nil {
			return nil, err
		}
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		if len(got) < page {
			return ids, nil
		}
		cursor = got[len(got)-1].ID
	}
}

func dlqReplay(ctx context.Context, e *env, args []string) error {
	f := newFlags("dlq replay", "deliver dead letters again and remove them", "[flags] ID... | --all", `
Delivers each dead letter's message again, as it was received, to the group
that gave up on it, from attempt 1, and removes the dead letter. If it fails
again it is dead-lettered again, under a new id.

The command of a flow step whose run has ended (completed, failed or
cancelled) is not replayed: performing the step would change nothing in the
run, which would neither use its result nor compensate it (a failed order's
customer would be charged and never refunded). Such a dead letter is kept and
reported as refused; drop it, and start a new run under a new key to try
again. So is a dead letter whose body the store cut to its bound (dlq show
says "truncated"): it would deliver another message. Refusals alone do not
make the command fail; any other failure does.

On a running baton demo's directory the running services handle it at once;
on an idle one it waits in the group's queue for the next run.`,
		"baton dlq replay --data ./baton-data 1234",
		"baton dlq replay --data ./baton-data --all")
	tgt := f.targetFlags(e, false)
	all := f.Bool("all", false, "replay every dead letter")
	return dlqEach(ctx, e, f, args, tgt, all, "replayed", func(ctx context.Context, src source, id string) error {
		return src.ReplayDead(ctx, id)
	})
}

func dlqDrop(ctx context.Context, e *env, args []string) error {
	f := newFlags("dlq drop", "delete dead letters", "[flags] ID... | --all", `
Deletes dead letters for good: their messages are not handled again. The
journal keeps what happened to them.`,
		"baton dlq drop --data ./baton-data 1234",
		"baton dlq drop --data ./baton-data --all")
	tgt := f.targetFlags(e, false)
	all := f.Bool("all", false, "drop every dead letter")
	return dlqEach(ctx, e, f, args, tgt, all, "dropped", func(ctx context.Context, src source, id string) error {
		return src.DropDead(ctx, id)
	})
}

// dlqEach applies do to the dead letters named by args or --all, going on
// past failures, which it reports.
func dlqEach(ctx context.Context, e *env, f *flags, args []string, tgt *target, all *bool, done string,
	do func(context.Context, source, string) error) error {
	args, err := f.parse(e, args)
	if err != nil {
		return err
	}
	switch {
	case !*all && len(args) == 0:
		return usagef("%s: missing the dead letter's ID (see baton dlq list), or --all; see baton %s --help", f.path, f.path)
	case *all && len(args) > 0:
		return usagef("%s: give IDs or --all, not both", f.path)
	}
	src, live, err := tgt.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	ids := args
	if *all {
		if ids, err = allIDs(ctx, src); err != nil {
			return tgt.explain(err)
		}
	}
	failed, refused := 0, 0
	for _, id := range ids {
		var what string
		if d, err := src.Dead(ctx, id); err == nil {
			what = fmt.Sprintf(" (%s %s of %s in %s)", d.Type, shortID(d.EventID), d.CorrelationID, d.Group)
		}
		err := do(ctx, src, id)
		switch {
		case err == nil:
			fmt.Fprintf(e.stdout, "%s dead letter %s%s\n", done, id, what)
		case done == "replayed" && baton.ErrorCode(err) == baton.Conflict:
			// The step of a run that has ended: refused as designed, the
			// dead letter kept; the rest are replayed all the same.
			fmt.Fprintf(e.stdout, "refused: %v\n", err)
			refused++
		default:
			fmt.Fprintf(e.stderr, "baton: %s: %v\n", f.path, err)
			failed++
		}
	}
	if *all {
		fmt.Fprintf(e.stdout, "%s %d dead letters\n", done, len(ids)-failed-refused)
	}
	if refused > 0 {
		fmt.Fprintf(e.stdout, "refused %d dead letters: steps of flow runs that have ended; drop them with %s\n", refused, tgt.hint("dlq drop", "ID"))
	}
	if done == "replayed" && len(ids) > failed+refused {
		switch {
		case live:
			fmt.Fprintf(e.stdout, "the running process handles them now; follow with %s\n", tgt.hint("tail"))
		case tgt.brokers:
			fmt.Fprintf(e.stdout, "they are back on their groups' queues: the groups' running services handle them now, stopped ones when they start; follow with %s\n", tgt.hint("tail"))
		default:
			fmt.Fprintf(e.stdout, "they are handled when baton demo or baton server next runs on %s\n", tgt.dir)
		}
	}
	if failed > 0 {
		return errSilent
	}
	return nil
}
