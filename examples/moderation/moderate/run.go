package moderate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/store"
)

// Config configures Run. Zero values mean the defaults.
type Config struct {
	// Dir is the data directory of the embedded backend; set Memory instead
	// to keep everything in memory.
	Dir    string
	Memory bool
	Pages  []Page        // the site's pages (default DefaultPages)
	Delay  time.Duration // how long the site takes to serve a page (default 20ms)
	// Workers is the number of workers, each with its own session (default 3).
	Workers int
	Rules   []Rule // default DefaultRules
	Logger  *slog.Logger
}

// Outcome is what a sweep of the site found.
type Outcome struct {
	SiteURL string
	Pages   []string // as the site listed them
	Flow    flow.Flow
	Run     store.Run
	Report  Report
	Site    SiteStats
}

var slugRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Run starts the test site on a free loopback port, lists its pages,
// generates the flow for them, runs it once on the embedded backend with
// the moderator service, and returns the report with the site's account of
// the requests. It stops everything it started before returning; ctx bounds
// the whole sweep.
func Run(ctx context.Context, cfg Config) (out Outcome, err error) {
	if cfg.Pages == nil {
		cfg.Pages = DefaultPages()
	}
	if cfg.Delay == 0 {
		cfg.Delay = 20 * time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 3
	}
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Stop what was started, in reverse order, when Run returns.
	var stops []func(context.Context) error
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			err = errors.Join(err, stops[i](stopCtx))
		}
	}()

	site := NewSite(cfg.Pages, cfg.Delay)
	srv, err := serve(site.Handler())
	if err != nil {
		return out, fmt.Errorf("test site: %w", err)
	}
	stops = append(stops, srv.shutdown)
	out.SiteURL = srv.URL

	// The scraper's first request, outside the flow: which pages are
	// there? The flow is generated from the answer.
	if out.Pages, err = listPages(ctx, srv.URL); err != nil {
		return out, err
	}
	for _, slug := range out.Pages {
		if !slugRE.MatchString(slug) {
			return out, baton.Errorf(baton.Invalid, "moderate", "page %q: want a slug of a-z, 0-9, '_' and '-' (it names a step and a variable)", slug)
		}
	}
	out.Flow = Flow(out.Pages, cfg.Workers)

	b, err := embedded.Open(embedded.Config{Dir: cfg.Dir, Memory: cfg.Memory, Logger: cfg.Logger})
	if err != nil {
		return out, err
	}
	stops = append(stops, func(context.Context) error { return b.Close() })
	services := []baton.Service{NewModerator(cfg.Rules).Service()}
	rt, err := bus.New(bus.Config{Transport: b, Store: b, Logger: cfg.Logger})
	if err != nil {
		return out, err
	}
	for _, s := range services {
		if err := rt.Register(s); err != nil {
			return out, err
		}
	}
	if err := rt.Start(ctx); err != nil {
		return out, err
	}
	stops = append(stops, rt.Stop)

	hub, err := notify.New(notify.Config{Logger: cfg.Logger})
	if err != nil {
		return out, err
	}
	stops = append(stops, hub.Stop)
	ended, _ := hub.Subscribe(flow.RunCompleted, flow.RunFailed, flow.RunCancelled)
	co, err := flow.New(flow.Config{
		Store: b, Transport: b, Flows: []flow.Flow{out.Flow}, Services: services, Notifier: hub, Logger: cfg.Logger,
	})
	if err != nil {
		return out, err
	}
	if err := co.Start(ctx); err != nil {
		return out, err
	}
	stops = append(stops, co.Stop)

	in, _ := json.Marshal(map[string]string{"site": srv.URL})
	key := "sweep-" + time.Now().UTC().Format("20060102T150405.000")
	run, _, err := co.StartRun(ctx, flow.StartRequest{Flow: FlowName, Key: key, Input: in})
	if err != nil {
		return out, err
	}
	for !run.Status.Terminal() {
		select {
		case n, ok := <-ended:
			if !ok {
				return out, errors.New("the notifier stopped before the run ended")
			}
			if n.Run != nil && n.Run.ID == run.ID {
				run = *n.Run
			}
		case <-ctx.Done():
			return out, fmt.Errorf("run %s: %w", run.ID, ctx.Err())
		}
	}
	out.Run = run
	out.Site = site.Stats()
	if run.Status != store.RunCompleted {
		return out, fmt.Errorf("run %s %s: %s", run.ID, run.Status, run.Error)
	}
	if err := json.Unmarshal(run.Result, &out.Report); err != nil {
		return out, fmt.Errorf("run %s: the result is not a report: %w", run.ID, err)
	}
	return out, nil
}

// listPages asks the site for its pages.
func listPages(ctx context.Context, site string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, site+"/pages", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list pages: %w", err)
	}
	defer resp.Body.Close()
	var index struct {
		Pages []string `json:"pages"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list pages: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&index); err != nil {
		return nil, fmt.Errorf("list pages: %w", err)
	}
	return index.Pages, nil
}

// Print writes the outcome for a person to read.
func (o Outcome) Print(w io.Writer) {
	workers := len(o.Flow.Steps[0].Parallel.Branches)
	fmt.Fprintf(w, "site %s: %d pages; flow %s v%d generated for them, %d workers each with its own session:\n",
		o.SiteURL, len(o.Pages), o.Flow.Name, o.Flow.Version, workers)
	for n, branch := range o.Flow.Steps[0].Parallel.Branches {
		var pages []string
		for _, s := range branch[1:] {
			pages = append(pages, strings.TrimPrefix(s.Name, "page-"))
		}
		fmt.Fprintf(w, "  %s: login, then %s\n", Worker(n+1), strings.Join(pages, ", "))
	}
	fmt.Fprintf(w, "run %s %s in %v\n\n", o.Run.ID, o.Run.Status, o.Run.Updated.Sub(o.Run.Created).Round(time.Millisecond))

	fmt.Fprintf(w, "%-9s %-30s %-8s %s\n", "page", "title", "verdict", "matched")
	for _, v := range o.Report.Verdicts {
		var matched []string
		for _, m := range v.Matches {
			matched = append(matched, fmt.Sprintf("%s %q", m.Rule, m.Text))
		}
		verdict := v.Verdict
		if verdict == VerdictFlagged {
			verdict = "FLAGGED"
		}
		line := fmt.Sprintf("%-9s %-30s %-8s %s", v.Page, v.Title, verdict, strings.Join(matched, ", "))
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "\n%d of %d pages flagged\n", o.Report.Flagged, o.Report.Pages)

	st := o.Site
	fetched, once := 0, 0
	for _, n := range st.Fetches {
		fetched += n
		if n == 1 {
			once++
		}
	}
	fmt.Fprintf(w, "site: %d logins; %d distinct session cookies, %d used by a worker other than its owner;\n",
		sum(st.Logins), len(st.Sessions), len(st.Shared()))
	fmt.Fprintf(w, "      %d page requests served (%d of %d pages exactly once), %d refused for want of a session, at most %d at once\n",
		fetched, once, len(o.Pages), st.Refused, st.MaxInFlight)
	for _, s := range st.Sessions {
		fmt.Fprintf(w, "      the session cookie %s got at login: sent by %s, for %d pages\n", s.Owner, strings.Join(s.UsedBy, ", "), len(s.Pages))
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
