package moderate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/moderation/moderate"
)

// flaggedDefault is what the default rules must flag on the default pages,
// page -> rules; every other page must pass.
var flaggedDefault = map[string][]string{
	"shop-1":  {"banned-word"},
	"forum-1": {"banned-word"},
	"forum-3": {"payment-bait"},
	"blog-2":  {"banned-word"},
}

// A sweep of the site flags exactly the pages with banned words, fetches
// every page once, and each worker's session cookie goes only with that
// worker's requests — with any number of workers.
func TestSweep(t *testing.T) {
	for _, workers := range []int{1, 3, 4, 12} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := moderate.Run(ctx, moderate.Config{Memory: true, Workers: workers, Delay: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			pages := moderate.DefaultPages()

			// The report.
			if out.Report.Pages != len(pages) || len(out.Report.Verdicts) != len(pages) || out.Report.Flagged != len(flaggedDefault) {
				t.Errorf("report of %d pages, %d verdicts, %d flagged; want %d, %d, %d",
					out.Report.Pages, len(out.Report.Verdicts), out.Report.Flagged, len(pages), len(pages), len(flaggedDefault))
			}
			got := map[string][]string{}
			titles := map[string]string{}
			for _, v := range out.Report.Verdicts {
				titles[v.Page] = v.Title
				if v.Verdict == moderate.VerdictFlagged {
					got[v.Page] = v.Rules()
				} else if v.Verdict != moderate.VerdictOK || len(v.Matches) > 0 {
					t.Errorf("page %s: verdict %q with matches %v", v.Page, v.Verdict, v.Matches)
				}
			}
			if !maps.EqualFunc(got, flaggedDefault, slices.Equal) {
				t.Errorf("flagged %v, want exactly %v", got, flaggedDefault)
			}
			for _, p := range pages {
				if titles[p.Slug] != p.Title {
					t.Errorf("page %s: title %q, want %q (taken from the HTML)", p.Slug, titles[p.Slug], p.Title)
				}
			}

			// The site's account.
			st := out.Site
			if len(st.Fetches) != len(pages) {
				t.Errorf("%d pages fetched, want %d: %v", len(st.Fetches), len(pages), st.Fetches)
			}
			for _, p := range pages {
				if n := st.Fetches[p.Slug]; n != 1 {
					t.Errorf("page %s fetched %d times, want once", p.Slug, n)
				}
			}
			if st.Refused != 0 {
				t.Errorf("%d page requests refused for want of a session", st.Refused)
			}
			assigned := moderate.Assign(out.Pages, workers)
			wantLogins := map[string]int{}
			var owners []string
			for n := 1; n <= workers; n++ {
				w := moderate.Worker(n)
				wantLogins[w] = 1
				if len(assigned[w]) > 0 {
					owners = append(owners, w)
				}
			}
			if !maps.Equal(st.Logins, wantLogins) {
				t.Errorf("logins %v, want one per worker: %v", st.Logins, wantLogins)
			}
			var gotOwners []string
			for _, s := range st.Sessions {
				gotOwners = append(gotOwners, s.Owner)
				if !slices.Equal(s.UsedBy, []string{s.Owner}) {
					t.Errorf("the session cookie of %s was sent by %v, want by %s only", s.Owner, s.UsedBy, s.Owner)
				}
				if !slices.Equal(s.Pages, assigned[s.Owner]) {
					t.Errorf("the session cookie of %s went with pages %v, want its own: %v", s.Owner, s.Pages, assigned[s.Owner])
				}
			}
			slices.Sort(owners)
			if !slices.Equal(gotOwners, owners) {
				t.Errorf("distinct session cookies on page requests, by owner: %v, want one per worker with pages: %v", gotOwners, owners)
			}
			if shared := st.Shared(); len(shared) > 0 {
				t.Errorf("sessions shared between workers: %+v", shared)
			}
			if st.MaxInFlight > workers {
				t.Errorf("%d pages served at once with %d workers", st.MaxInFlight, workers)
			}

			// The run's result is the report.
			var result moderate.Report
			if err := json.Unmarshal(out.Run.Result, &result); err != nil || result.Flagged != out.Report.Flagged {
				t.Errorf("run result %s (%v)", out.Run.Result, err)
			}
		})
	}
}

// The flow a sweep generates has one branch per worker, each logging in
// first and keeping to its worker's session.
func TestFlow(t *testing.T) {
	pages := []string{"a", "b", "c", "d", "e"}
	f := moderate.Flow(pages, 2)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	branches := f.Steps[0].Parallel.Branches
	if len(branches) != 2 {
		t.Fatalf("%d branches, want 2", len(branches))
	}
	var fetched []string
	for n, branch := range branches {
		w := moderate.Worker(n + 1)
		if branch[0].HTTP == nil || branch[0].HTTP.Method != "POST" || !strings.HasSuffix(branch[0].HTTP.URL, "/login") {
			t.Errorf("branch %d starts with %+v, want the login", n, branch[0])
		}
		for _, s := range branch {
			if s.HTTP.Session != w {
				t.Errorf("step %s: session %q, want %q", s.Name, s.HTTP.Session, w)
			}
		}
		for _, s := range branch[1:] {
			fetched = append(fetched, strings.TrimPrefix(s.Name, "page-"))
		}
	}
	slices.Sort(fetched)
	if !slices.Equal(fetched, pages) {
		t.Errorf("pages fetched %v, want each of %v once", fetched, pages)
	}
	if s := f.Steps[1]; s.Send == nil || s.Send.Type != moderate.TypeModerationRequested || s.Send.Data != "vars" {
		t.Errorf("last step %+v, want the pages sent to the moderator", s)
	}
}

// The site refuses private pages without a session, and notices a cookie
// sent on behalf of another worker: what the sweep's test relies on.
func TestSite(t *testing.T) {
	site := moderate.NewSite(moderate.DefaultPages(), 0)
	srv := httptest.NewServer(site.Handler())
	defer srv.Close()

	get := func(c *http.Client, path string) int {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	anon := srv.Client()
	if code := get(anon, "/pages/shop-1?worker=worker-1"); code != http.StatusUnauthorized {
		t.Errorf("a private page without a session: %d, want 401", code)
	}
	if code := get(anon, "/pages/news-1?worker=worker-1"); code != http.StatusOK {
		t.Errorf("a public page without a session: %d, want 200", code)
	}
	if code := get(anon, "/pages/nope"); code != http.StatusNotFound {
		t.Errorf("an unknown page: %d, want 404", code)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Post(srv.URL+"/login", "application/json", strings.NewReader(`{"worker":"worker-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := get(c, "/pages/shop-1?worker=worker-1"); code != http.StatusOK {
		t.Errorf("a private page with a session: %d, want 200", code)
	}
	if code := get(c, "/pages/shop-2?worker=worker-2"); code != http.StatusOK {
		t.Errorf("a private page with a session: %d, want 200", code)
	}
	st := site.Stats()
	if st.Refused != 1 || st.Fetches["shop-1"] != 1 || st.Fetches["news-1"] != 1 {
		t.Errorf("stats %+v", st)
	}
	shared := st.Shared()
	if len(shared) != 1 || shared[0].Owner != "worker-1" || !slices.Equal(shared[0].UsedBy, []string{"worker-1", "worker-2"}) {
		t.Errorf("shared sessions %+v, want worker-1's cookie sent by worker-1 and worker-2", shared)
	}
}

func TestModerator(t *testing.T) {
	m := moderate.NewModerator(moderate.DefaultRules())
	page := func(title, body string) string {
		return "<html><head><title>" + title + "</title><style>.scam{}</style></head><body><nav>scam reports</nav><p>" + body + "</p></body></html>"
	}
	r := m.Moderate(map[string]string{
		"a": page("Scampi", "scampi and scampering"),
		"b": page("Deal", "a Miracle\n  Cure &amp; more"),
		"c": page("Pay", "please WIRE   me the money"),
		"d": page("Fine &amp; dandy", "<script>var scam = 1</script>nothing to see"),
		"e": "plain text, a scam",
	})
	want := map[string][]string{"b": {"banned-word"}, "c": {"payment-bait"}, "e": {"banned-word"}}
	got := map[string][]string{}
	for _, v := range r.Verdicts {
		if v.Verdict == moderate.VerdictFlagged {
			got[v.Page] = v.Rules()
		}
		if v.Page == "d" && v.Title != "Fine & dandy" {
			t.Errorf("title %q, want entities decoded", v.Title)
		}
	}
	if !maps.EqualFunc(got, want, slices.Equal) || r.Flagged != 3 || r.Pages != 5 {
		t.Errorf("flagged %v (%d of %d), want %v", got, r.Flagged, r.Pages, want)
	}

	handle := m.Service().Handlers[0].Func
	for _, bad := range []string{`[]`, `{}`, `nope`} {
		if _, err := handle(context.Background(), baton.Event{ID: "e1", Type: moderate.TypeModerationRequested, Data: []byte(bad)}); !baton.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", bad, err)
		}
	}
}
