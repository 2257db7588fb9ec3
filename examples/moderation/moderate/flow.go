package moderate

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
)

// FlowName is the name of the moderation flow.
const FlowName = "moderate"

var inputSchema = json.RawMessage(`{
  "type": "object",
  "required": ["site"],
  "properties": {"site": {"type": "string", "pattern": "^https?://"}}
}`)

// Worker is the name of worker n, counted from 1: the name of its session.
func Worker(n int) string { return fmt.Sprintf("worker-%d", n) }

// Assign shares the pages out among workers, round robin: worker n gets
// the pages at n-1, n-1+workers, ...
func Assign(pages []string, workers int) map[string][]string {
	out := make(map[string][]string, workers)
	for i, p := range pages {
		w := Worker(i%workers + 1)
		out[w] = append(out[w], p)
	}
	return out
}

// Flow generates the "moderate" flow for the pages (slugs) of a site whose
// base URL is the run's input "site", fetched by workers workers:
//
//	scrape    parallel, one branch per worker, joined when all are done:
//	            login-worker-N     POST {{input.site}}/login            session worker-N
//	            page-SLUG          GET  {{input.site}}/pages/SLUG?...   session worker-N, maps the HTML to vars.SLUG
//	            ...
//	moderate  send moderation.requested.v1 with the vars (slug -> HTML) to the moderator
//
// Each branch's steps share the worker's session, its own cookie jar: the
// cookie its login sets goes with its page requests, and no other
// worker's. The run's result is the moderator's report.
//
// A flow definition is data, so generating it is fine; a different page
// list is a different definition, which a long-lived deployment would give
// a new version.
func Flow(pages []string, workers int) flow.Flow {
	retry := &baton.RetryPolicy{MaxAttempts: 3, Base: 100 * time.Millisecond, Cap: time.Second}
	timeout := flow.Duration(10 * time.Second)
	shares := Assign(pages, workers)
	branches := make([][]flow.Step, 0, workers)
	for n := 1; n <= workers; n++ {
		w := Worker(n)
		branch := []flow.Step{{
			Name:    "login-" + w,
			HTTP:    &flow.HTTPCall{Method: "POST", URL: "{{input.site}}/login", Session: w, Body: `{"worker": "` + w + `"}`},
			Timeout: timeout, Retry: retry,
		}}
		for _, slug := range shares[w] {
			branch = append(branch, flow.Step{
				Name: "page-" + slug,
				HTTP: &flow.HTTPCall{
					URL:     "{{input.site}}/pages/" + slug + "?worker=" + w,
					Session: w,
					Map:     map[string]string{slug: "body"},
				},
				Timeout: timeout, Retry: retry,
			})
		}
		branches = append(branches, branch)
	}
	return flow.Flow{
		Name:        FlowName,
		Version:     1,
		InputSchema: inputSchema,
		Steps: []flow.Step{
			{Name: "scrape", Parallel: &flow.Parallel{Branches: branches, Join: "all"}},
			{Name: "moderate", Send: &flow.Send{Type: TypeModerationRequested, Data: "vars"}, Timeout: timeout},
		},
	}
}
