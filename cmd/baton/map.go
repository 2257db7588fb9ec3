package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/traffic"
)

func runMap(ctx context.Context, e *env, args []string) error {
	f := newFlags("map", "draw the choreography map from the journal's traffic", "[flags]", `
Draws what the services were seen doing over the last --window, from the
journal alone: which consumer group handled which event type, which types
each group emitted, and which types were published from outside any handler
(by a client, the API, the demo). Each edge "TYPE -> GROUP" (consumes)
carries the events handled, the failed attempts that were retried, the
events dead-lettered and the copies skipped as duplicates, the error rate
(failed attempts over all attempts) and the dead-letter rate (over the events
that ended), and the 50th and 99th percentile of the hop latency: from the
event's publication to its handling. Edges "GROUP -> TYPE" (emits) and
"SOURCE -> TYPE" (publishes) carry a count. Edges come in the order traffic
first took them.

At most 200000 entries of the window are read; when there are more, the map
says it is truncated and how far it got: give a shorter --window.

A flow's coordinator does not journal the commands it sends: under
orchestration the services' groups show the commands they handled and the
replies they emitted.

--format text prints a table, dot a Graphviz graph (baton map --format dot |
dot -Tsvg > map.svg), mermaid a Mermaid flowchart (for Markdown that renders
it), json the map as GET /v1/map answers it.

It reads the data directory --data DIR (directly, or through the control
socket of the process that holds it), the store of a broker deployment
directly with --bus URL --store URL --namespace NAME (or BATON_BUS,
BATON_STORE and BATON_NAMESPACE), or asks a baton server's API with
--server URL.`,
		"baton map --data ./baton-data",
		"baton map --data ./baton-data --window 1h --format dot | dot -Tsvg > map.svg",
		"baton map --bus nats://127.0.0.1:4222 --store redis://127.0.0.1:6379/0 --namespace shop",
		"baton map --server http://127.0.0.1:7070 --format mermaid",
		"baton map --data ./baton-data --format json | jq '.edges[] | select(.dead_lettered > 0)'")
	tgt := f.targetFlags(e, false)
	window := f.Duration("window", traffic.DefaultWindow, "draw the traffic of the last `DURATION`")
	format := f.String("format", "text", "print the map as `FORMAT`: text, dot, mermaid or json")
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	if *window <= 0 {
		return usagef("map: --window %v: give a positive duration such as 15m or 24h", *window)
	}
	write, ok := mapFormats[*format]
	if !ok {
		return usagef("map: --format %q: give text, dot, mermaid or json", *format)
	}
	src, _, err := tgt.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	m, err := src.Map(ctx, *window)
	if err != nil {
		return tgt.explain(err)
	}
	if m.Truncated {
		fmt.Fprintf(e.stderr, "baton map: the window holds more than the %d entries read, which reach %s only; give a shorter --window\n",
			m.Entries, m.Last.Local().Format("15:04:05"))
	}
	return write(e.stdout, m, tgt.where())
}

var mapFormats = map[string]func(w io.Writer, m traffic.Map, where string) error{
	"text":    mapText,
	"dot":     mapDOT,
	"mermaid": mapMermaid,
	"json":    func(w io.Writer, m traffic.Map, _ string) error { return printJSON(w, m) },
}

func mapText(w io.Writer, m traffic.Map, where string) error {
	fmt.Fprintf(w, "%s: %d journal entries\n\n", title(m, where), m.Entries)
	if len(m.Edges) == 0 {
		fmt.Fprintln(w, "no traffic in the window; give a longer --window?")
		return nil
	}
	rows := [][]string{{"FROM", "", "TO", "KIND", "COUNT", "FAILED", "DEAD", "DUPS", "ERRORS", "DEAD%", "HOP P50", "HOP P99"}}
	for _, ed := range m.Edges {
		row := []string{ed.From, "->", ed.To, string(ed.Kind), strconv.Itoa(ed.Count)}
		if ed.Kind == traffic.Consumes {
			row = append(row, strconv.Itoa(ed.Failed), strconv.Itoa(ed.DeadLettered), strconv.Itoa(ed.Duplicates),
				percent(ed.ErrorRate), percent(ed.DeadLetterRate), took(ed.HopP50), took(ed.HopP99))
		} else {
			// Cells, even empty, keep the columns of the rows below aligned.
			row = append(row, "", "", "", "", "", "", "")
		}
		rows = append(rows, row)
	}
	return table(w, rows)
}

// title names what a map shows: "traffic of DIR from 2026-03-01 12:00:00
// to 12:15:00", with the end's date when it is another day.
func title(m traffic.Map, where string) string {
	from, to := m.From.Local(), m.To.Local()
	end := to.Format("15:04:05")
	if from.YearDay() != to.YearDay() || from.Year() != to.Year() {
		end = to.Format(time.DateTime)
	}
	return fmt.Sprintf("traffic of %s from %s to %s", where, from.Format(time.DateTime), end)
}

func percent(r float64) string { return strconv.FormatFloat(100*r, 'f', 1, 64) + "%" }

// nodeKinds names the kinds of node an edge joins: its from and its to.
func nodeKinds(k traffic.Kind) (from, to string) {
	switch k {
	case traffic.Consumes:
		return "type", "group"
	case traffic.Emits:
		return "group", "type"
	}
	return "source", "type"
}

// label is what a graph writes on an edge: the counts, and for a group's
// consumption the failures and the hop latency.
func label(ed traffic.Edge) []string {
	switch ed.Kind {
	case traffic.Emits:
		return []string{fmt.Sprintf("%d emitted", ed.Count)}
	case traffic.Publishes:
		return []string{fmt.Sprintf("%d published", ed.Count)}
	}
	lines := []string{fmt.Sprintf("%d handled", ed.Count)}
	if ed.Failed > 0 || ed.DeadLettered > 0 {
		lines = append(lines, fmt.Sprintf("%d failed, %d dead-lettered", ed.Failed, ed.DeadLettered))
	}
	if ed.Duplicates > 0 {
		lines = append(lines, fmt.Sprintf("%d duplicates", ed.Duplicates))
	}
	if ed.Timed > 0 {
		lines = append(lines, fmt.Sprintf("p50 %s, p99 %s", took(ed.HopP50), took(ed.HopP99)))
	}
	return lines
}

// mapDOT writes the map as a Graphviz digraph: types as ellipses, groups as
// boxes, sources as plain text; an edge red when it dead-lettered, orange
// when attempts failed.
func mapDOT(w io.Writer, m traffic.Map, where string) error {
	var b strings.Builder
	b.WriteString("digraph baton {\n")
	fmt.Fprintf(&b, "  label=%s;\n", dotQuote(title(m, where)))
	b.WriteString("  rankdir=LR;\n")
	shapes := map[string]string{"type": "ellipse", "group": "box", "source": "plaintext"}
	seen := map[string]bool{}
	node := func(kind, name string) string {
		id := dotQuote(kind + ":" + name)
		if !seen[id] {
			seen[id] = true
			fmt.Fprintf(&b, "  %s [label=%s, shape=%s];\n", id, dotQuote(name), shapes[kind])
		}
		return id
	}
	for _, ed := range m.Edges {
		fk, tk := nodeKinds(ed.Kind)
		from, to := node(fk, ed.From), node(tk, ed.To)
		attrs := "label=" + dotQuote(strings.Join(label(ed), "\n"))
		switch {
		case ed.DeadLettered > 0:
			attrs += ", color=red"
		case ed.Failed > 0:
			attrs += ", color=orange"
		}
		fmt.Fprintf(&b, "  %s -> %s [%s];\n", from, to, attrs)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote makes s a DOT quoted string; a newline in it breaks the label's
// line.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// mapMermaid writes the map as a Mermaid flowchart: types as stadiums,
// groups as rectangles, sources as flags.
func mapMermaid(w io.Writer, m traffic.Map, where string) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	fmt.Fprintf(&b, "  %%%% %s\n", title(m, where))
	shapes := map[string][2]string{"type": {"([", "])"}, "group": {"[", "]"}, "source": {">", "]"}}
	ids := map[string]string{}
	node := func(kind, name string) string {
		key := kind + ":" + name
		id, ok := ids[key]
		if !ok {
			id = "n" + strconv.Itoa(len(ids))
			ids[key] = id
			s := shapes[kind]
			fmt.Fprintf(&b, "  %s%s%s%s\n", id, s[0], mermaidQuote(name), s[1])
		}
		return id
	}
	for _, ed := range m.Edges {
		fk, tk := nodeKinds(ed.Kind)
		from, to := node(fk, ed.From), node(tk, ed.To)
		fmt.Fprintf(&b, "  %s -->|%s| %s\n", from, mermaidQuote(strings.Join(label(ed), "<br>")), to)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidQuote makes s a Mermaid quoted label: a double quote in it is
// written as Mermaid's entity.
func mermaidQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"`
}
