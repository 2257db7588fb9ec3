package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

// The live tail's stream polls the journal (the store has no notification
// to wait on), and ends after a while: the browser's EventSource reconnects
// from the last id it saw, so a server that is stopping is not held up by
// open tails for long.
const (
	tailPoll     = 250 * time.Millisecond
	tailLifetime = 30 * time.Second
	tailPage     = 200
	tailScan     = 5_000 // sequence numbers the page reads back from the end
)

type tailFilter struct {
	Type, Group, Outcome, Correlation string
}

func readTailFilter(r *http.Request) tailFilter {
	q := r.URL.Query()
	return tailFilter{Type: q.Get("type"), Group: q.Get("group"), Outcome: q.Get("outcome"), Correlation: q.Get("correlation")}
}

func (f tailFilter) match(e store.Entry) bool {
	return (f.Type == "" || e.EventType == f.Type) && (f.Group == "" || e.Group == f.Group) &&
		(f.Outcome == "" || string(e.Outcome) == f.Outcome) && (f.Correlation == "" || e.CorrelationID == f.Correlation)
}

type tailData struct {
	Filter   tailFilter
	Outcomes []store.Outcome
	Entries  []store.Entry
	After    uint64 // where the stream starts
}

// tail renders the last few entries of the last hour that match, then the
// page's script follows the stream from the journal's end. It reads at
// most tailScan sequence numbers back from the end, so that a busy journal
// does not make the page slow or send the browser the whole hour.
func (d *dashboard) tail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := readTailFilter(r)
	now := time.Now()
	end, err := traffic.After(ctx, d.store, now)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	from, err := traffic.After(ctx, d.store, now.Add(-time.Hour))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if end > tailScan && from < end-tailScan {
		from = end - tailScan
	}
	data := tailData{Filter: f, After: end, Outcomes: []store.Outcome{store.Published, store.Handled, store.Failed,
		store.DeadLettered, store.Duplicate, store.Replayed, store.ExpectationBroken, store.ExpectationMetLate}}
	for from < end {
		page, err := d.store.Since(ctx, from, tailPage)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		for _, e := range page {
			if e.Seq > end {
				break
			}
			from = e.Seq
			if f.match(e) {
				data.Entries = append(data.Entries, e)
			}
		}
		if len(page) < tailPage || page[len(page)-1].Seq > end {
			break
		}
	}
	data.Entries = data.Entries[max(0, len(data.Entries)-tailBacklog):]
	d.render(w, r, http.StatusOK, "tail", page{Title: "Live tail", Nav: "tail", Data: data})
}

// tailStream serves the journal entries after ?after (or the
// Last-Event-ID of a reconnecting browser) that match the filter, as
// server-sent events: "id: SEQ", "data: ENTRY AS JSON".
func (d *dashboard) tailStream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := readTailFilter(r)
	s := r.Header.Get("Last-Event-ID")
	if s == "" {
		s = r.URL.Query().Get("after")
	}
	after, err := strconv.ParseUint(s, 10, 64)
	if err != nil && s != "" {
		http.Error(w, fmt.Sprintf("after=%q is not a sequence number", s), http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(tailLifetime + 10*time.Second))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// A comment first, so that the browser sees the stream open.
	fmt.Fprint(w, ": tail\n\n")
	_ = rc.Flush()
	end := time.After(tailLifetime)
	tick := time.NewTicker(tailPoll)
	defer tick.Stop()
	for {
		page, err := d.store.Since(ctx, after, tailPage)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("ui: tail", "err", err)
				fmt.Fprintf(w, "event: problem\ndata: %s\n\n", jsonString(err.Error()))
				_ = rc.Flush()
			}
			return
		}
		sent := false
		for _, e := range page {
			after = e.Seq
			if !f.match(e) {
				continue
			}
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b)
			sent = true
		}
		if len(page) > 0 && !sent {
			// Move the browser's resume point past what did not match.
			fmt.Fprintf(w, "id: %d\n\n", after)
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if len(page) == tailPage {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
