package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// tailWait is how long one request for new entries waits on a running
// process before asking again.
const tailWait = 25 * time.Second

func runTail(ctx context.Context, e *env, args []string) error {
	f := newFlags("tail", "print journal entries as they are written", "[flags]", `
Follows the journal of a data directory until Ctrl-C, one line per entry: the
time, the sequence number, the business transaction (correlation id), then the
columns of baton status. By default it starts with the entries written from
now on; --from-start prints the whole journal first.

On a running baton demo's or server's directory it long-polls the control
socket; on an idle one it opens the directory and looks for new entries every
200ms (and holds the directory meanwhile: start the demo first). With
--bus URL --store URL (or BATON_BUS and BATON_STORE) it reads the store
directly, every 200ms. With --server URL it long-polls a baton server's API.`,
		"baton tail --data ./baton-data",
		"baton tail --server http://127.0.0.1:7070",
		"baton tail --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0 --namespace shop",
		"baton tail --data ./baton-data --from-start | grep dead-lettered")
	tgt := f.targetFlags(e, false)
	fromStart := f.Bool("from-start", false, "begin with the first entry of the journal (seq 0)")
	asJSON := f.Bool("json", false, "print each entry as one line of JSON")
	wide := f.Bool("wide", false, "show event ids whole (default: the part that tells them apart)")
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	src, live, err := tgt.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	var after uint64
	if !*fromStart {
		if after, err = lastSeq(ctx, src); err != nil {
			return quiet(ctx, tgt.explain(err))
		}
	}
	how := "reading the directory"
	switch {
	case tgt.brokers:
		how = "reading the store"
	case tgt.url != "":
		how = "through its API"
	case live:
		how = "through the socket of the process that holds it"
	}
	fmt.Fprintf(e.stderr, "following the journal of %s after entry %d, %s; Ctrl-C to stop\n", tgt.where(), after, how)
	wait := tailWait
	if !live {
		wait = time.Hour // direct polling: SinceWait looks every 200ms
	}
	print := lineWriter(e.stdout, *asJSON, idFormat(*wide))
	for {
		entries, err := src.SinceWait(ctx, after, page, wait)
		if err != nil {
			if live && baton.ErrorCode(err) == baton.Unavailable && ctx.Err() == nil {
				fmt.Fprintf(e.stderr, "baton tail: the process serving %s stopped; run baton tail again to go on\n", tgt.where())
				return nil
			}
			return quiet(ctx, tgt.explain(err))
		}
		for _, en := range entries {
			print(en)
			after = en.Seq
		}
	}
}

// quiet turns the error of an interrupted command into none: Ctrl-C is how
// tail ends.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func lineWriter(w io.Writer, asJSON bool, id func(string) string) func(store.Entry) {
	if asJSON {
		enc := json.NewEncoder(w)
		return func(e store.Entry) { _ = enc.Encode(e) }
	}
	widths := []int{13, 22, 18, 12, 3, 7}
	return func(e store.Entry) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s  %6d  %-10s", e.Time.Local().Format("15:04:05.000"), e.Seq, e.CorrelationID)
		cols := columns(e, id)
		for i, c := range cols {
			b.WriteString("  ")
			if i < len(widths) {
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// lastSeq finds the journal's last sequence number with Since alone: the
// seams have no "last", and a tail that starts now must not read the whole
// journal. Since(x, 1) returns the first entry after x, so a search over x
// takes about twice log2(last) requests.
func lastSeq(ctx context.Context, src source) (uint64, error) {
	first := func(after uint64) (uint64, bool, error) {
		es, err := src.Since(ctx, after, 1)
		if err != nil || len(es) == 0 {
			return 0, false, err
		}
		return es[0].Seq, true, nil
	}
	var lo uint64 // an entry's seq (or 0), with none after hi
	hi := uint64(1 << 10)
	for {
		seq, ok, err := first(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo = seq
		if seq > 1<<62 {
			hi = ^uint64(0)
			break
		}
		hi = 2 * seq
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		seq, ok, err := first(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = seq
		} else {
			hi = mid
		}
	}
	// hi itself may be an entry.
	seq, ok, err := first(lo)
	if ok {
		lo = seq
	}
	return lo, err
}
