package flow

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// A redirect to another origin (here another port of the same address) is
// not followed: the session's headers and cookies stay where they were sent.
// A redirect within the origin is followed with them.
func TestHTTPRedirectToAnotherOriginIsRefused(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var leaked []http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, `{"stolen": true}`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "secret-session", Path: "/"})
		case "/away":
			http.Redirect(w, r, other.URL+"/collect", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/final":
			c, _ := r.Cookie("sid")
			json.NewEncoder(w).Encode(map[string]any{"key": r.Header.Get("X-Api-Key"), "cookie": c != nil})
		}
	}))
	defer srv.Close()

	c := NewHTTPClient(HTTPConfig{})
	session := map[string]string{"X-Api-Key": "key-1", "Authorization": "Bearer tok-1"}
	if _, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + "/login", Session: "s", Headers: session}, nil, callData); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + "/away", Session: "s"}, nil, callData)
	if err == nil || !baton.IsPermanent(err) || !strings.Contains(err.Error(), "another origin, "+other.URL+"/collect") {
		t.Errorf("a redirect to another origin gave %v, want a permanent error naming where it went", err)
	}
	mu.Lock()
	if len(leaked) != 0 {
		t.Errorf("the other origin got %d requests, the first with headers %v", len(leaked), leaked[0])
	}
	mu.Unlock()

	_, vars, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + "/here", Session: "s",
		Map: map[string]string{"key": "body.key", "cookie": "body.cookie"}}, nil, callData)
	if err != nil {
		t.Fatalf("a redirect within the origin: %v", err)
	}
	if string(vars["key"]) != `"key-1"` || string(vars["cookie"]) != "true" {
		t.Errorf("after a redirect within the origin the server saw key %s and cookie %s, want the session's", vars["key"], vars["cookie"])
	}
}

// Template values cannot change the URL's structure: each is escaped for
// the part of the URL it is in.
func TestHTTPURLValuesAreEscaped(t *testing.T) {
	t.Parallel()
	type seen struct{ path, query string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.EscapedPath(), r.URL.RawQuery}
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	data := json.RawMessage(`{"input": {"id": "1?admin=true&x=", "file": "../../../internal/delete", "dots": "..", "who": "a b+c"}}`)

	tests := []struct {
		name, url string
		want      seen
	}{
		{"a query in a path segment", "/orders/{{input.id}}", seen{"/orders/1%3Fadmin=true&x=", ""}},
		{"slashes in a path segment", "/files/{{input.file}}", seen{"/files/..%2F..%2F..%2Finternal%2Fdelete", ""}},
		{"a query value", "/orders?id={{input.id}}&who={{input.who}}", seen{"/orders", "id=1%3Fadmin%3Dtrue%26x%3D&who=a+b%2Bc"}},
		{"a fragment's value does not leave it", "/orders#{{input.id}}", seen{"/orders", ""}},
	}
	c := NewHTTPClient(HTTPConfig{})
	for _, tt := range tests {
		if _, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + tt.url}, nil, data); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if s := <-got; s != tt.want {
			t.Errorf("%s: the server saw path %q query %q, want %q %q", tt.name, s.path, s.query, tt.want.path, tt.want.query)
		}
	}
	q, _ := url.ParseQuery(tests[2].want.query)
	if q.Get("id") != "1?admin=true&x=" || q.Has("admin") {
		t.Errorf("the query %v does not give back the value", q)
	}

	_, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + "/a/b/{{input.dots}}/delete"}, nil, data)
	if err == nil || !baton.IsPermanent(err) || !strings.Contains(err.Error(), `".." segment`) {
		t.Errorf("a value of .. in the path gave %v, want a permanent error naming the segment", err)
	}
	select {
	case s := <-got:
		t.Errorf("the server got %+v", s)
	default:
	}
}

func TestRenderURL(t *testing.T) {
	t.Parallel()
	data := json.RawMessage(`{"input": {"url": "http://a.example/x?y=1", "base": "https://a.example/v1",
		"host": "eu", "bad_host": "evil.example/x?", "user_host": "me@evil.example", "n": 7, "seg": "a/b"}}`)
	tests := []struct {
		tmpl, want, says string
	}{
		{"{{input.url}}", "http://a.example/x?y=1", ""},
		{"{{input.base}}/orders/{{input.seg}}?n={{input.n}}", "https://a.example/v1/orders/a%2Fb?n=7", ""},
		{"https://{{input.host}}.example.com/{{input.seg}}", "https://eu.example.com/a%2Fb", ""},
		{"https://{{input.bad_host}}.example.com/", "", "host"},
		{"https://{{input.user_host}}/", "", "host"},
		{"{{input.url}}/more", "", "begins the URL"},
		{"https://a.example/./x", "", `"." segment`},
		{"https://a.example/%2e%2E/x", "", `".." segment`},
	}
	for _, tt := range tests {
		got, err := RenderURL(tt.tmpl, data)
		if tt.says == "" {
			if err != nil || got != tt.want {
				t.Errorf("RenderURL(%q) = %q, %v, want %q", tt.tmpl, got, err, tt.want)
			}
			continue
		}
		if err == nil || baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("RenderURL(%q) = %q, %v, want an Invalid error saying %q", tt.tmpl, got, err, tt.says)
		}
	}
}

// With hosts set, a call goes only to those hosts.
func TestHTTPHostsAllowList(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL) // 127.0.0.1:PORT
	c := NewHTTPClient(HTTPConfig{})
	for _, hosts := range [][]string{{u.Host}, {"other.example", u.Hostname()}} {
		if _, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL}, hosts, callData); err != nil {
			t.Errorf("hosts %v: %v", hosts, err)
		}
	}
	for _, hosts := range [][]string{{"localhost"}, {u.Hostname() + ":1"}} {
		_, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL + "/x"}, hosts, callData)
		list := "[" + strings.Join(hosts, ", ") + "]"
		if err == nil || !baton.IsPermanent(err) || !strings.Contains(err.Error(), "the host "+u.Host+" is not in the flow's hosts "+list) {
			t.Errorf("hosts %v: %v, want a permanent error naming %s and %s", hosts, err, u.Host, list)
		}
	}
}

// Beyond MaxWaiting calls waiting for a slot, a call fails at once,
// retryably, saying why.
func TestHTTPWaitingIsBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c := NewHTTPClient(HTTPConfig{MaxConcurrent: 1, MaxWaiting: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // one in flight, two waiting
		wg.Go(func() {
			_, _, err := c.Call(context.Background(), "run-1", HTTPCall{URL: srv.URL}, nil, callData)
			errs <- err
		})
	}
	for len(c.wait) < 3 {
		time.Sleep(time.Millisecond)
	}
	// Without the bound this call would wait; the deadline only keeps a
	// broken build from hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err := c.Call(ctx, "run-2", HTTPCall{URL: srv.URL}, nil, callData)
	if err == nil || baton.IsPermanent(err) || !strings.Contains(err.Error(), "2 calls are already waiting for one of the 1 connection slots") {
		t.Errorf("a call over the bound gave %v, want a retryable error saying how many wait", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call within the bound: %v", err)
		}
	}
}
