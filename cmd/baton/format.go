package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batonhq/baton/store"
)

// shortID shortens an event id for a table, keeping the part that tells it
// from its neighbours: the first 8 digits of the hex ids the runtime derives
// for emitted events; for a coordinator's step command
// ("r-RUNID/charge#1") the end of the run id and the step
// ("…VVM6HJ/charge#1"), as runs started together share the start of their
// ids; for a ULID, its last 8 characters (the start is the time). Other ids
// ("place-o-000017") stay whole; --wide shows every id whole.
func shortID(id string) string {
	if len(id) <= 16 {
		return id
	}
	if strings.Trim(id, "0123456789abcdef") == "" {
		return id[:8]
	}
	if run, step, ok := strings.Cut(id, "/"); ok && len(run) > 8 {
		return "…" + run[len(run)-6:] + "/" + step
	}
	if isULID(id) {
		return "…" + id[len(id)-8:]
	}
	return id
}

// isULID reports whether id is a ULID, as event.NewID makes them.
func isULID(id string) bool {
	return len(id) == 26 && strings.Trim(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == ""
}

// idFormat is how a table shows event ids: shortID, or whole (--wide).
func idFormat(wide bool) func(string) string {
	if wide {
		return func(id string) string { return id }
	}
	return shortID
}

// who is the group that handled an entry's event, or for a published event,
// its source.
func who(e store.Entry) string {
	if e.Group != "" {
		return e.Group
	}
	return e.Source
}

func attempt(e store.Entry) string {
	if e.Attempt == 0 {
		return ""
	}
	return "#" + strconv.Itoa(e.Attempt)
}

// took formats a handler's duration; zero is blank.
func took(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// since formats the time from a transaction's first entry: "+0.8ms".
func since(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("+%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("+%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("+%.2fs", d.Seconds())
	}
	return "+" + d.Round(time.Second).String()
}

// detail is the error of an entry, or the ids of the events it caused.
func detail(e store.Entry, id func(string) string) string {
	if e.Error != "" {
		return e.Error
	}
	if len(e.Caused) == 0 {
		return ""
	}
	ids := make([]string, len(e.Caused))
	for i, c := range e.Caused {
		ids[i] = id(c)
	}
	return "→ " + strings.Join(ids, ", ")
}

// columns are an entry's fields after its time, as status and tail print
// them; id formats the event ids.
func columns(e store.Entry, id func(string) string) []string {
	return []string{string(e.Outcome), e.EventType, id(e.EventID), who(e), attempt(e), took(e.Duration), detail(e, id)}
}

var columnNames = []string{"OUTCOME", "EVENT", "ID", "GROUP", "TRY", "TOOK", "DETAIL"}

// describe says in words what one entry records.
func describe(e store.Entry) string {
	s := string(e.Outcome) + " " + e.EventType
	switch e.Outcome {
	case store.Published:
		if e.Source != "" {
			s += " by " + e.Source
		}
	case store.Replayed:
		if e.Group != "" {
			s += " (dead letter of " + e.Group + ")"
		}
	default:
		if e.Group != "" {
			s += " in " + e.Group
		}
		if e.Attempt > 0 {
			s += fmt.Sprintf(" (attempt %d)", e.Attempt)
		}
	}
	if e.Error != "" {
		s += ": " + e.Error
	}
	return s
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printEmpty begins printing a list: as JSON it prints all of it (none as
// []), and in text it says "no " + what when there is none. done is true
// when nothing is left to print.
func printEmpty[T any](w io.Writer, list []T, asJSON bool, what string) (done bool, err error) {
	if asJSON {
		if list == nil {
			list = []T{}
		}
		return true, printJSON(w, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "no "+what)
		return true, nil
	}
	return false, nil
}

// table writes rows in aligned columns, with no trailing blanks.
func table(w io.Writer, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}

// traceIDs lists the trace ids the entries name, each once, in order.
func traceIDs(h []store.Entry) []string {
	var ids []string
	for _, e := range h {
		if e.TraceID != "" && !slices.Contains(ids, e.TraceID) {
			ids = append(ids, e.TraceID)
		}
	}
	return ids
}
