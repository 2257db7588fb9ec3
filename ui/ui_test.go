package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/ui"
)

func newDashboard(t *testing.T, tokens ...string) *httptest.Server {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a, err := api.New(api.Config{Store: b, Transport: b, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ui.New(ui.Config{API: a, Store: b, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// With tokens, a page sends the browser to the login page, which keeps a
// right token in a session cookie that the pages and the API accept; a
// wrong one is refused, and logging out forgets it.
func TestLogin(t *testing.T) {
	t.Parallel()
	srv := newDashboard(t, "s3cret-s3cret-s3cret")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	post := func(path string, form url.Values, site string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	resp, _ := get("/dead-letters?group=payment")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fdead-letters%3Fgroup%3Dpayment" {
		t.Fatalf("a page without a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get("/v1/dead-letters"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the API without a session: %d", resp.StatusCode)
	}
	if resp, body := get("/login"); resp.StatusCode != 200 || !strings.Contains(body, `type="password"`) {
		t.Errorf("the login page: %d", resp.StatusCode)
	}
	if resp := post("/login", url.Values{"token": {"nope"}}, "same-origin"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d", resp.StatusCode)
	}
	// Another site cannot log a browser in (login CSRF).
	if resp := post("/login", url.Values{"token": {"s3cret-s3cret-s3cret"}}, "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site login: %d", resp.StatusCode)
	}
	resp = post("/login", url.Values{"token": {"s3cret-s3cret-s3cret"}, "next": {"/dead-letters?group=payment"}}, "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dead-letters?group=payment" {
		t.Fatalf("a right token: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == api.SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.MaxAge != 0 {
		t.Fatalf("session cookie: %+v", cookie)
	}
	if resp, body := get("/dead-letters?group=payment"); resp.StatusCode != 200 || !strings.Contains(body, "No dead letters in payment match") {
		t.Errorf("a page with the session: %d", resp.StatusCode)
	}
	if resp, _ := get("/v1/dead-letters"); resp.StatusCode != 200 {
		t.Errorf("the API with the session: %d", resp.StatusCode)
	}
	// A redirect after login stays on this server.
	if resp := post("/login", url.Values{"token": {"s3cret-s3cret-s3cret"}, "next": {"//evil.example/"}}, "same-origin"); resp.Header.Get("Location") != "/" {
		t.Errorf("next=//evil.example/ redirects to %q", resp.Header.Get("Location"))
	}
	post("/logout", nil, "same-origin")
	if resp, _ := get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a page after logging out: %d", resp.StatusCode)
	}
}

// Without tokens there is no login, and the API is served beside the pages.
func TestNoLogin(t *testing.T) {
	t.Parallel()
	srv := newDashboard(t)
	for path, want := range map[string]int{"/": 200, "/search?key=o-1": 200, "/v1/dead-letters": 200, "/healthz": 200,
		"/static/app.css": 200, "/no-such-page": 404, "/tx/nothing-here": 404, "/search?status=lost": 400, "/map?window=-1m": 400} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// The live tail's page shows the journal's latest entries that match its
// filter, and its stream sends the ones written after, as server-sent
// events with their sequence numbers as ids.
func TestTail(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := api.New(api.Config{Store: b, Transport: b})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ui.New(ui.Config{API: a, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()
	entry := func(cid, group string) store.Entry {
		return store.Entry{Time: time.Now(), CorrelationID: cid, Outcome: store.Handled, EventType: "order.placed.v1", Group: group}
	}
	var old []store.Entry
	for i := range 80 {
		old = append(old, entry(fmt.Sprintf("o-%03d", i), []string{"payment", "inventory"}[i%2]))
	}
	if err := b.Append(ctx, old...); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/tail?group=payment")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The last 50 of payment's 40: all of them, none of inventory's.
	if n := strings.Count(string(body), ">payment</td>"); n != 40 || strings.Contains(string(body), ">inventory</td>") {
		t.Errorf("tail of payment: %d payment rows (want 40):\n%.2000s", n, body)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", fmt.Sprintf("%s/tail/stream?group=inventory&after=%d", srv.URL, old[len(old)-1].Seq), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream: Content-Type %q", ct)
	}
	fresh := []store.Entry{entry("o-new-1", "payment"), entry("o-new-2", "inventory")}
	if err := b.Append(ctx, fresh...); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var id, data string
	for sc.Scan() && data == "" {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
	}
	var got store.Entry
	if err := json.Unmarshal([]byte(data), &got); err != nil || got.CorrelationID != "o-new-2" || id != fmt.Sprint(fresh[1].Seq) {
		t.Errorf("first event of the stream: id %s, %s (%v); want o-new-2 with id %d", id, data, err, fresh[1].Seq)
	}
}

// A search by status reads a bounded number of runs for one page and links
// further back, so a status few runs have does not make one request read
// every run; following the link finds the older match.
func TestSearchByStatusIsPaged(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	const n = 5_600
	for i := range n {
		status := store.RunCompleted
		if i == 0 {
			status = store.RunFailed // the oldest
		}
		r := store.Run{ID: fmt.Sprintf("r-%05d", i), Flow: "order", Version: 1, Key: fmt.Sprintf("o-%05d", i), Status: status,
			Created: start.Add(time.Duration(i) * time.Millisecond)}
		if _, _, err := b.CreateRun(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	a, err := api.New(api.Config{Store: b, Transport: b})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ui.New(ui.Config{API: a, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "localhost"
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("GET %s: %d", path, w.Code)
		}
		return w.Body.String()
	}
	first := get("/search?status=failed")
	if !strings.Contains(first, "No runs match among the newest 5000") {
		t.Fatalf("first page:\n%.3000s", first)
	}
	i := strings.Index(first, `rel="next" href="`)
	if i < 0 {
		t.Fatal("no link further back")
	}
	link := first[i+len(`rel="next" href="`):]
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	if next := get(link); !strings.Contains(next, `href="/tx/o-00000"`) {
		t.Errorf("%s does not find the oldest run:\n%.3000s", link, next)
	}
}

// A page asked for under a name that is not this server's (a name an
// attacker re-pointed at 127.0.0.1) is refused, as the API refuses it; one
// given with Hosts is served.
func TestPagesRefuseForeignHosts(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a, err := api.New(api.Config{Store: b, Transport: b, Hosts: []string{"baton.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ui.New(ui.Config{API: a, Store: b, Hosts: []string{"baton.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, path string
		status     int
	}{
		{"attacker.example", "/", http.StatusForbidden},
		{"attacker.example", "/search?key=o-1", http.StatusForbidden},
		{"attacker.example", "/static/app.css", http.StatusForbidden},
		{"attacker.example", "/v1/journal", http.StatusForbidden},
		{"attacker.example", "/healthz", http.StatusOK},
		{"baton.example.com", "/", http.StatusOK},
		{"localhost:7070", "/", http.StatusOK},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Host = tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("GET %s with Host %s: %d, want %d", tc.path, tc.host, w.Code, tc.status)
		}
	}
}

// A search by event type finds the transactions that journaled it, newest
// first, reads a bounded part of the journal for one page, and links
// further back to the older ones.
func TestSearchByEventType(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	// o-old refunded long ago, then 6,000 entries of other types, then
	// o-new refunded and o-other only placed.
	entry := func(i int, corr, typ string) store.Entry {
		return store.Entry{Time: start.Add(time.Duration(i) * time.Millisecond), CorrelationID: corr, Outcome: store.Published, EventType: typ}
	}
	batch := []store.Entry{entry(0, "o-old", "payment.refunded.v1")}
	for i := 1; i <= 6_000; i++ {
		batch = append(batch, entry(i, fmt.Sprintf("o-%05d", i), "order.placed.v1"))
	}
	batch = append(batch, entry(6_001, "o-new", "payment.refunded.v1"), entry(6_002, "o-other", "order.placed.v1"))
	if err := b.Append(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{Store: b, Transport: b})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ui.New(ui.Config{API: a, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "localhost"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("GET %s: %d: %s", path, w.Code, w.Body)
		}
		return w.Body.String()
	}
	first := get("/search?type=payment.refunded.v1")
	if !strings.Contains(first, `href="/tx/o-new"`) || strings.Contains(first, `href="/tx/o-old"`) || strings.Contains(first, `href="/tx/o-other"`) {
		t.Fatalf("first page: want o-new alone (o-old is further back than one page reads):\n%s", first)
	}
	m := regexp.MustCompile(`href="/search\?([^"]*before=[^"]*)"`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first page has no link further back:\n%s", first)
	}
	older := get("/search?" + html.UnescapeString(m[1]))
	if !strings.Contains(older, `href="/tx/o-old"`) || strings.Contains(older, `href="/tx/o-new"`) {
		t.Errorf("the page further back: want o-old alone:\n%s", older)
	}
	if strings.Contains(older, "before=") {
		t.Errorf("the page further back reached the start of the journal but links on")
	}
	// A time window that ends before o-new leaves only o-old.
	until := start.Add(6_001 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	windowed := get("/search?type=payment.refunded.v1&until=" + url.QueryEscape(until))
	if strings.Contains(windowed, `href="/tx/o-new"`) {
		t.Errorf("until %s: o-new was journaled after it:\n%s", until, windowed)
	}
}
