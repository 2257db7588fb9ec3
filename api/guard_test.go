package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
)

// raw sends a request built by hand, as a browser or an attacker would,
// and returns the status and the body.
func (s *stack) raw(t *testing.T, method, path, contentType, body string, header ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// With no token on loopback, a web page must still not be able to publish,
// start runs or read the journal through the user's browser.
func TestBrowsersCannotDriveTheAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	event := `{"type":"order.placed.v1","subject":"evil-1","data":{}}`
	for _, tc := range []struct {
		name                      string
		method, path, ctype, body string
		header                    []string
		status                    int
		inBody                    string
	}{
		{"text/plain cross-origin publish", "POST", "/v1/events", "text/plain", event,
			[]string{"Origin", "http://evil.example"}, 403, "cross-origin"},
		{"text/plain cross-site publish", "POST", "/v1/events", "text/plain", event,
			[]string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, 403, "cross-origin"},
		{"same-site page on another port", "POST", "/v1/events", "application/json", event,
			[]string{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:1"}, 403, "cross-origin"},
		{"text/plain publish without Origin", "POST", "/v1/events", "text/plain", event, nil, 415, "application/json"},
		{"no type", "POST", "/v1/events", "", event, nil, 415, "application/json"},
		{"form start", "POST", "/v1/runs", "application/x-www-form-urlencoded", "flow=order&key=evil-2",
			[]string{"Origin", "null"}, 403, "cross-origin"},
		{"form start without Origin", "POST", "/v1/runs", "application/x-www-form-urlencoded", "flow=order&key=evil-2", nil, 415, "application/json"},
		{"multipart schedule", "POST", "/v1/schedules", "multipart/form-data; boundary=x", "--x--", nil, 415, "application/json"},
		{"rebound name reads the journal", "GET", "/v1/journal", "", "", []string{"Host", "attacker.example:7070"}, 403, "--allow-host"},
		{"rebound name reads runs", "GET", "/v1/runs", "", "", []string{"Host", "attacker.example"}, 403, "Host header"},
		{"rebound name publishes", "POST", "/v1/events", "application/json", event, []string{"Host", "attacker.example"}, 403, "Host header"},
	} {
		status, body := s.raw(t, tc.method, tc.path, tc.ctype, tc.body, tc.header...)
		if status != tc.status || !strings.Contains(body, tc.inBody) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, status, body, tc.status, tc.inBody)
		}
	}
	// Nothing got through.
	var h api.History
	s.do(t, "GET", "/v1/history/evil-1", nil).decode(t, &h)
	var runs api.RunPage
	s.do(t, "GET", "/v1/runs", nil).decode(t, &runs)
	if len(h.Entries) != 0 || len(runs.Runs) != 0 {
		t.Errorf("refused requests left %d journal entries and %d runs", len(h.Entries), len(runs.Runs))
	}
}

// A page this server serves (the dashboard) is same-origin: its writes
// pass, as do programs (no Origin) and JSON bodies of every spelling.
func TestSameOriginAndProgramsPass(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	origin := s.srv.URL
	for _, tc := range []struct {
		name   string
		ctype  string
		header []string
	}{
		{"same-origin page", "application/json", []string{"Sec-Fetch-Site", "same-origin", "Origin", origin}},
		{"Origin without Sec-Fetch-Site", "application/json", []string{"Origin", origin}},
		{"typed by hand", "none", []string{"Sec-Fetch-Site", "none"}},
		{"a program", "application/json; charset=utf-8", nil},
		{"structured CloudEvent", "application/cloudevents+json", nil},
		{"localhost", "application/json", []string{"Host", "localhost:7070"}},
		{"IPv6 loopback", "application/json", []string{"Host", "[::1]:7070"}},
	} {
		ctype := tc.ctype
		if ctype == "none" {
			ctype = "application/json"
		}
		status, body := s.raw(t, "POST", "/v1/events", ctype, `{"type":"order.placed.v1","subject":"ok","data":{}}`, tc.header...)
		if status != http.StatusAccepted {
			t.Errorf("%s: %d %s, want 202", tc.name, status, body)
		}
	}
	// A write without a body needs no type.
	if status, body := s.raw(t, "DELETE", "/v1/dead-letters/nope", "", ""); status != http.StatusNotFound {
		t.Errorf("DELETE without a body: %d %s, want 404", status, body)
	}
	if status, body := s.raw(t, "POST", "/v1/schedules/nope/pause", "", ""); status != http.StatusNotFound {
		t.Errorf("POST without a body: %d %s, want 404", status, body)
	}
	// Probes may name the server as they like.
	if status, body := s.raw(t, "GET", "/healthz", "", "", "Host", "pod-7.internal"); status != http.StatusOK {
		t.Errorf("/healthz with another Host: %d %s", status, body)
	}
}

// Config.Hosts names a server by the names it is reached by.
func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *api.Config) { c.Hosts = []string{"baton.example.com", "Baton.Internal:7070"} })
	for host, want := range map[string]int{
		"baton.example.com":      200,
		"BATON.example.com:443":  200,
		"baton.internal":         200,
		"baton.example.com.":     200,
		"example.com":            403,
		"evil.baton.example.com": 403,
		"baton.example.com.evil": 403,
		"127.0.0.1:7070":         200,
	} {
		status, body := s.raw(t, "GET", "/v1/flows", "", "", "Host", host)
		if status != want {
			t.Errorf("Host %q: %d %s, want %d", host, status, body, want)
		}
	}
	if _, err := api.New(api.Config{Store: s.b, Transport: s.b, Hosts: []string{"http://baton.example.com/"}}); err == nil {
		t.Error("a URL as a host name was accepted")
	}
}
