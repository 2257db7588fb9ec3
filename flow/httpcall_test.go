package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

var callData = json.RawMessage(`{"input": {"order_id": "ORDER-101", "city": "Zürich", "amount": 42.5, "note": "a\r\nX-Evil: 1"},
	"vars": {"token": "tok-1"}}`)

func TestHTTPGetMapsJSONIntoVars(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/weather/Zürich" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Station", "ZRH")
		io.WriteString(w, `{"temperature": 21.5, "readings": [{"at": "10:00", "c": 20}, {"at": "11:00", "c": 21.5}]}`)
	}))
	defer srv.Close()

	c := NewHTTPClient(HTTPConfig{})
	result, vars, err := c.Call(context.Background(), "run-1", HTTPCall{
		URL: srv.URL + "/weather/{{input.city}}",
		Map: map[string]string{
			"temperature": "body.temperature",
			"second":      "body.readings.1.c",
			"code":        "status",
			"station":     "headers.X-Station",
		},
	}, nil, callData)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"temperature": `21.5`, "second": `21.5`, "code": `200`, "station": `"ZRH"`}
	if len(vars) != len(want) {
		t.Errorf("vars = %s, want %v", vars, want)
	}
	for k, v := range want {
		if string(vars[k]) != v {
			t.Errorf("vars[%s] = %s, want %s", k, vars[k], v)
		}
	}
	var doc struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    map[string]any    `json:"body"`
	}
	if err := json.Unmarshal(result, &doc); err != nil {
		t.Fatalf("result %s: %v", result, err)
	}
	if doc.Status != 200 || doc.Headers["Content-Type"] != "application/json" || doc.Body["temperature"] != 21.5 {
		t.Errorf("result = %s", result)
	}
}

func TestHTTPPostRendersBodyAndHeaders(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, auth, order, ctype, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("X-Order"), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "created <ok> & done")
	}))
	defer srv.Close()

	c := NewHTTPClient(HTTPConfig{})
	result, vars, err := c.Call(context.Background(), "run-1", HTTPCall{
		Method:  "post",
		URL:     srv.URL + "/orders?id={{input.order_id}}",
		Headers: map[string]string{"Authorization": "Bearer {{ vars.token }}", "X-Order": "{{input.order_id}}"},
		Body:    `{"order": "{{input.order_id}}", "amount": {{input.amount}}, "city": "{{input.city}}"}`,
		Map:     map[string]string{"answer": "body"},
	}, nil, callData)
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	want := seen{"POST", "/orders?id=ORDER-101", "Bearer tok-1", "ORDER-101", "application/json",
		`{"order": "ORDER-101", "amount": 42.5, "city": "Zürich"}`}
	if s != want {
		t.Errorf("server saw %+v\nwant %+v", s, want)
	}
	if string(vars["answer"]) != `"created \u003cok\u003e \u0026 done"` {
		t.Errorf("a text body maps to %s, want it as a JSON string", vars["answer"])
	}
	if text, err := Render("{{body}}", result); err != nil || text != "created <ok> & done" {
		t.Errorf("the body renders as %q, %v", text, err)
	}
	if code, _ := Lookup(result, "status"); string(code) != "201" {
		t.Errorf("status = %s, want 201", code)
	}
}

// sessionServer sets a new cookie on /login and echoes the cookie and the
// X-Token header on /me.
func sessionServer(t *testing.T) *httptest.Server {
	var logins atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: fmt.Sprintf("s%d", logins.Add(1)), Path: "/"})
		io.WriteString(w, `{"ok": true}`)
	})
	mux.HandleFunc("/me", func(w http.ResponseWriter, r *http.Request) {
		sid := "none"
		if c, err := r.Cookie("sid"); err == nil {
			sid = c.Value
		}
		json.NewEncoder(w).Encode(map[string]string{"sid": sid, "token": r.Header.Get("X-Token")})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// sessionMe returns the sid and X-Token the server saw for (run, session).
func sessionMe(t *testing.T, c *HTTPClient, srv *httptest.Server, run, session string, headers map[string]string) (sid, token string) {
	t.Helper()
	_, vars, err := c.Call(context.Background(), run, HTTPCall{
		URL: srv.URL + "/me", Session: session, Headers: headers,
		Map: map[string]string{"sid": "body.sid", "token": "body.token"},
	}, nil, callData)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(vars["sid"], &sid)
	json.Unmarshal(vars["token"], &token)
	return sid, token
}

func sessionLogin(t *testing.T, c *HTTPClient, srv *httptest.Server, run, session string) {
	t.Helper()
	if _, _, err := c.Call(context.Background(), run, HTTPCall{Method: "POST", URL: srv.URL + "/login", Session: session}, nil, callData); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPSessionsKeepCookiesApart(t *testing.T) {
	t.Parallel()
	srv := sessionServer(t)
	c := NewHTTPClient(HTTPConfig{})

	sessionLogin(t, c, srv, "run-1", "alice")
	sessionLogin(t, c, srv, "run-1", "bob")
	a1, _ := sessionMe(t, c, srv, "run-1", "alice", nil)
	a2, _ := sessionMe(t, c, srv, "run-1", "alice", nil)
	b, _ := sessionMe(t, c, srv, "run-1", "bob", nil)
	def, _ := sessionMe(t, c, srv, "run-1", "", nil)
	if a1 != "s1" || a2 != "s1" {
		t.Errorf("alice's calls saw %s and %s, want her cookie s1 both times", a1, a2)
	}
	if b != "s2" {
		t.Errorf("bob saw %s, want his cookie s2", b)
	}
	if def != "none" {
		t.Errorf("the default session saw %s, want no cookie", def)
	}

	// Another run's session of the same name is another session.
	if other, _ := sessionMe(t, c, srv, "run-2", "alice", nil); other != "none" {
		t.Errorf("run-2's alice saw %s before logging in, want no cookie", other)
	}
	sessionLogin(t, c, srv, "run-2", "alice")
	if other, _ := sessionMe(t, c, srv, "run-2", "alice", nil); other != "s3" {
		t.Errorf("run-2's alice saw %s, want s3", other)
	}
	if a, _ := sessionMe(t, c, srv, "run-1", "alice", nil); a != "s1" {
		t.Errorf("run-1's alice saw %s after run-2 logged in, want s1", a)
	}

	// The session name is a template too.
	if s, _ := sessionMe(t, c, srv, "run-1", "{{input.order_id}}", nil); s != "none" {
		t.Errorf("session ORDER-101 saw %s, want no cookie", s)
	}
}

func TestHTTPSessionsShareHeaders(t *testing.T) {
	t.Parallel()
	srv := sessionServer(t)
	c := NewHTTPClient(HTTPConfig{})

	if _, tok := sessionMe(t, c, srv, "run-1", "api", map[string]string{"X-Token": "{{vars.token}}"}); tok != "tok-1" {
		t.Errorf("the call setting X-Token sent %q", tok)
	}
	if _, tok := sessionMe(t, c, srv, "run-1", "api", nil); tok != "tok-1" {
		t.Errorf("a later call of the session sent X-Token %q, want the session's tok-1", tok)
	}
	if _, tok := sessionMe(t, c, srv, "run-1", "api", map[string]string{"X-Token": "tok-2"}); tok != "tok-2" {
		t.Errorf("a call overriding X-Token sent %q", tok)
	}
	if _, tok := sessionMe(t, c, srv, "run-1", "api", nil); tok != "tok-2" {
		t.Errorf("after the override the session sent %q, want tok-2", tok)
	}
	if _, tok := sessionMe(t, c, srv, "run-1", "other", nil); tok != "" {
		t.Errorf("another session sent X-Token %q", tok)
	}
	if _, tok := sessionMe(t, c, srv, "run-2", "api", nil); tok != "" {
		t.Errorf("another run's session sent X-Token %q", tok)
	}
}

func TestHTTPForget(t *testing.T) {
	t.Parallel()
	srv := sessionServer(t)
	c := NewHTTPClient(HTTPConfig{})
	sessionLogin(t, c, srv, "run-1", "")
	sessionLogin(t, c, srv, "run-2", "")
	c.Forget("run-1")
	c.mu.Lock()
	_, kept1 := c.runs["run-1"]
	_, kept2 := c.runs["run-2"]
	c.mu.Unlock()
	if kept1 || !kept2 {
		t.Errorf("after Forget(run-1): run-1 kept %v, run-2 kept %v", kept1, kept2)
	}
	if sid, _ := sessionMe(t, c, srv, "run-1", "", nil); sid != "none" {
		t.Errorf("run-1 still sends cookie %s after Forget", sid)
	}
	if sid, _ := sessionMe(t, c, srv, "run-2", "", nil); sid != "s2" {
		t.Errorf("run-2 lost its cookie: %s", sid)
	}
	c.Forget("never-seen") // harmless
}

func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300) // 600 bytes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "database down", http.StatusInternalServerError)
		case "/503":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/429":
			w.Header().Set("Retry-After", "2")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "/404":
			http.Error(w, `{"error": "no such order"}`, http.StatusNotFound)
		case "/400":
			http.Error(w, long, http.StatusBadRequest)
		case "/huge":
			chunk := strings.Repeat("x", 64<<10)
			for range 17 { // 1 MiB + 64 KiB
				io.WriteString(w, chunk)
			}
		case "/shape":
			io.WriteString(w, `{"temperature": 20}`)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name      string
		call      HTTPCall
		permanent bool
		says      []string
		delay     time.Duration
	}{
		{"500 is retryable", HTTPCall{URL: srv.URL + "/500"}, false, []string{"GET", srv.URL + "/500", "status 500", "database down"}, 0},
		{"503 with Retry-After", HTTPCall{Method: "PUT", URL: srv.URL + "/503"}, false, []string{"PUT", "status 503"}, 7 * time.Second},
		{"429 is retryable", HTTPCall{URL: srv.URL + "/429"}, false, []string{"status 429", "slow down"}, 2 * time.Second},
		{"404 is permanent", HTTPCall{URL: srv.URL + "/404"}, true, []string{"GET", "status 404", "no such order"}, 0},
		{"400 shows 200 bytes of body", HTTPCall{URL: srv.URL + "/400"}, true, []string{"status 400", strings.Repeat("é", 100) + "..."}, 0},
		{"body over 1 MiB", HTTPCall{URL: srv.URL + "/huge"}, true, []string{"over 1048576 bytes"}, 0},
		{"map path missing", HTTPCall{URL: srv.URL + "/shape", Map: map[string]string{"t": "body.temperature", "h": "body.humidity", "w": "body.wind"}},
			true, []string{"no value for h (body.humidity), w (body.wind)"}, 0},
		{"unknown template path", HTTPCall{URL: srv.URL + "/{{input.nope}}"}, true, []string{"input.nope"}, 0},
		{"unknown path in a header", HTTPCall{URL: srv.URL, Headers: map[string]string{"X-A": "{{vars.nope}}"}}, true, []string{"header X-A", "vars.nope"}, 0},
		{"unknown path in the body", HTTPCall{Method: "POST", URL: srv.URL, Body: "{{steps.x}}"}, true, []string{"body", "steps.x"}, 0},
		{"not an http URL", HTTPCall{URL: "ftp://example.com/x"}, true, []string{"ftp://example.com/x", "http or https"}, 0},
		{"relative URL", HTTPCall{URL: "/orders"}, true, []string{"/orders"}, 0},
		{"a header value with a line break", HTTPCall{URL: srv.URL, Headers: map[string]string{"X-A": "{{input.note}}"}}, true, []string{`header "X-A"`, "line break"}, 0},
		{"a bad header name", HTTPCall{URL: srv.URL, Headers: map[string]string{"X A": "b"}}, true, []string{`header "X A"`}, 0},
		{"bad method", HTTPCall{Method: "GE T", URL: srv.URL}, true, []string{"GE T"}, 0},
		{"connection refused is retryable", HTTPCall{URL: closed.URL + "/x"}, false, []string{"GET", closed.URL + "/x"}, 0},
	}
	c := NewHTTPClient(HTTPConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, vars, err := c.Call(context.Background(), "run-1", tt.call, nil, callData)
			if err == nil {
				t.Fatal("no error")
			}
			if vars != nil {
				t.Errorf("vars = %v with an error", vars)
			}
			if baton.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v: %v", baton.IsPermanent(err), tt.permanent, err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if d, _ := baton.RetryDelay(err); d != tt.delay {
				t.Errorf("retry delay = %v, want %v", d, tt.delay)
			}
		})
	}
}

func TestHTTPErrorKeepsTheResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error": "already shipped"}`)
	}))
	defer srv.Close()
	result, _, err := NewHTTPClient(HTTPConfig{}).Call(context.Background(), "run-1", HTTPCall{URL: srv.URL}, nil, callData)
	if !baton.IsPermanent(err) {
		t.Fatalf("409: %v, want a permanent error", err)
	}
	if v, _ := Lookup(result, "body.error"); string(v) != `"already shipped"` {
		t.Errorf("result = %s, want the response", result)
	}
}

func TestHTTPTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	c := NewHTTPClient(HTTPConfig{Timeout: 50 * time.Millisecond})
	_, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + "/slow"}, nil, callData)
	if err == nil || baton.IsPermanent(err) {
		t.Fatalf("a timeout gave %v, want a retryable error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") || !strings.Contains(err.Error(), "/slow") {
		t.Errorf("error %q should name the URL and the timeout", err)
	}
}

func TestHTTPConcurrencyBound(t *testing.T) {
	t.Parallel()
	const limit, calls = 3, 20
	var now, peak atomic.Int64
	full := make(chan struct{}) // closed once limit requests are in flight together
	var fullOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == limit {
			fullOnce.Do(func() { close(full) })
		}
		// Hold the first requests until the bound is reached, so that a
		// client letting more through would be seen.
		select {
		case <-full:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, `{"n": 1}`)
	}))
	defer srv.Close()

	c := NewHTTPClient(HTTPConfig{MaxConcurrent: limit})
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := range calls {
		wg.Go(func() {
			_, _, err := c.Call(context.Background(), fmt.Sprintf("run-%d", i%5), HTTPCall{URL: srv.URL}, nil, callData)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d requests were in flight at once, want exactly %d", p, limit)
	}
}

func TestHTTPWaitingForASlotRespectsContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	c := NewHTTPClient(HTTPConfig{MaxConcurrent: 1})
	busy := make(chan error)
	go func() {
		_, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL}, nil, callData)
		busy <- err
	}()
	for len(c.sem) == 0 { // wait until the first call holds the slot
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.Call(ctx, "run-2", HTTPCall{URL: srv.URL}, nil, callData)
	if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") || baton.IsPermanent(err) {
		t.Errorf("a cancelled wait gave %v, want a retryable error saying so", err)
	}
	close(release)
	if err := <-busy; err != nil {
		t.Errorf("the first call: %v", err)
	}
}
