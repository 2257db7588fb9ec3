package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/store"
)

// timeline is a transaction drawn as a Gantt chart: a lane per service
// (a consumer group, a publishing source, a flow's steps), a bar per
// handler attempt or step, placed by time.
type timeline struct {
	Start, End time.Time
	Lanes      []lane
}

type lane struct {
	Name string
	Bars []bar
}

type bar struct {
	Label   string
	Class   string // the outcome or the step's status: the bar's colour
	Start   time.Time
	End     time.Time
	Detail  string
	Left    string // CSS percentages of the timeline's span
	Width   string
	Instant bool // a point in time (a publication), not a span
}

// minBar is the narrowest a bar is drawn, in percent, so that a fast
// handler stays visible and clickable.
const minBar = 0.6

func buildTimeline(entries []store.Entry, runs []store.Run, now time.Time) timeline {
	var tl timeline
	lanes := map[string]*lane{}
	var order []string
	add := func(name string, b bar) {
		l := lanes[name]
		if l == nil {
			l = &lane{Name: name}
			lanes[name] = l
			order = append(order, name)
		}
		l.Bars = append(l.Bars, b)
	}
	for _, e := range entries {
		b := bar{Class: string(e.Outcome), Start: e.Time.Add(-e.Duration), End: e.Time}
		name := e.Group
		switch {
		case e.Group != "":
			b.Label = fmt.Sprintf("%s %s", e.EventType, e.Outcome)
			if e.Attempt > 0 {
				b.Label += fmt.Sprintf(" (attempt %d)", e.Attempt)
			}
		case strings.HasPrefix(string(e.Outcome), "run-"):
			name = "flow " + e.EventType
			b.Label = string(e.Outcome)
			b.Instant = true
		default:
			name = cmp.Or(e.Source, "publisher")
			b.Label = fmt.Sprintf("%s %s", e.EventType, e.Outcome)
			b.Instant = true
		}
		b.Detail = e.Error
		add(name, b)
	}
	for _, r := range runs {
		paths := make([]string, 0, len(r.Steps))
		for p := range r.Steps {
			paths = append(paths, p)
		}
		slices.SortFunc(paths, func(a, b string) int {
			return cmp.Or(r.Steps[a].Started.Compare(r.Steps[b].Started), strings.Compare(a, b))
		})
		for _, p := range paths {
			st := r.Steps[p]
			if st.Started.IsZero() {
				continue
			}
			end := st.Ended
			if end.IsZero() {
				end = now
			}
			b := bar{Label: fmt.Sprintf("%s %s", p, st.Status), Class: "step-" + string(st.Status), Start: st.Started, End: end, Detail: st.Error}
			if st.Attempts > 1 {
				b.Label += fmt.Sprintf(" (%d attempts)", st.Attempts)
			}
			add(fmt.Sprintf("flow %s v%d (run %s)", r.Flow, r.Version, r.ID), b)
		}
	}
	for _, name := range order {
		for _, b := range lanes[name].Bars {
			if tl.Start.IsZero() || b.Start.Before(tl.Start) {
				tl.Start = b.Start
			}
			if b.End.After(tl.End) {
				tl.End = b.End
			}
		}
	}
	span := tl.End.Sub(tl.Start)
	for _, name := range order {
		l := lanes[name]
		slices.SortStableFunc(l.Bars, func(a, b bar) int { return a.Start.Compare(b.Start) })
		for i := range l.Bars {
			b := &l.Bars[i]
			left, width := 0.0, 100.0
			if span > 0 {
				left = 100 * float64(b.Start.Sub(tl.Start)) / float64(span)
				width = 100 * float64(b.End.Sub(b.Start)) / float64(span)
			}
			width = max(width, minBar)
			left = min(left, 100-width)
			b.Left, b.Width = fmt.Sprintf("%.2f%%", left), fmt.Sprintf("%.2f%%", width)
		}
		tl.Lanes = append(tl.Lanes, *l)
	}
	return tl
}
