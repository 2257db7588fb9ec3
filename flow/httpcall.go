package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/batonhq/baton"
)

// HTTPConfig configures HTTP steps; the zero value means the defaults.
type HTTPConfig struct {
	MaxConcurrent int // calls in flight at once, across all runs (default 16)
	// MaxWaiting is how many calls may wait for one of the MaxConcurrent
	// slots (default 1024). A call beyond it fails at once with a retryable
	// error, and its step retries by its retry policy.
	MaxWaiting int
	Timeout    time.Duration     // per call, from the request to the end of the body (default 10s)
	Transport  http.RoundTripper // default http.DefaultTransport
}

// maxResponseBody is the largest response body an HTTP step takes.
const maxResponseBody = 1 << 20

// HTTPClient performs the HTTP steps of flows. Each (run, session) has its
// own cookie jar and headers. It is safe for concurrent use.
type HTTPClient struct {
	cfg  HTTPConfig
	sem  chan struct{}
	wait chan struct{} // a call holds it while it waits for sem or holds sem

	mu   sync.Mutex
	runs map[string]map[string]*httpSession // run id -> session name -> session
}

// httpSession is what the calls of one run's session share. It lives in
// memory only: a coordinator that restarts starts its runs' sessions afresh.
type httpSession struct {
	jar *cookiejar.Jar

	mu      sync.Mutex
	headers http.Header
}

// NewHTTPClient returns a client with cfg's zero fields set to the defaults.
func NewHTTPClient(cfg HTTPConfig) *HTTPClient {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 16
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = 1024
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	return &HTTPClient{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent), wait: make(chan struct{}, cfg.MaxConcurrent+cfg.MaxWaiting),
		runs: map[string]map[string]*httpSession{}}
}

// Call performs an HTTP step of run runID. It renders the call's URL (see
// RenderURL, which escapes the values), headers, session name and body (see
// Render) against the run data, and sends the request with the session's
// cookies and headers: the headers a call sets stay in its session for the
// session's later calls, which may override them. A body that is JSON is
// sent as application/json unless the call sets a Content-Type.
//
// hosts, when not empty, are the only hosts the call may go to (see
// Flow.Hosts). Redirects are followed only within the origin (scheme, host
// and port) of the request: a redirect to another origin would take the
// session's headers and cookies there, and fails the call.
//
// The result is the document {"status": 200, "headers": {"Content-Type":
// ...}, "body": ...}: the body as JSON when it parses as JSON, else as a
// string; header values joined with ", ", and Set-Cookie left to the jar. vars
// holds the call's Map looked up in it.
//
// A transport error, a timeout, and a 5xx or 429 status are plain errors,
// worth retrying (with baton.RetryAfter when the server sent Retry-After). A
// template that does not render, a bad URL, a host not in hosts, a redirect
// to another origin, any other status of 400 or more, a body over 1 MiB,
// and a Map path the response lacks are baton.Permanent. A call that finds
// MaxWaiting calls already waiting for a slot fails at once, retryably.
// Whenever a response came, result is returned with the error. Call does
// not retry: the engine does, durably, with the step's policy.
func (c *HTTPClient) Call(ctx context.Context, runID string, call HTTPCall, hosts []string, data json.RawMessage) (result json.RawMessage, vars map[string]json.RawMessage, err error) {
	method := strings.ToUpper(call.Method)
	if method == "" {
		method = http.MethodGet
	}
	rawURL, err := RenderURL(call.URL, data)
	if err != nil {
		return nil, nil, baton.Permanent(fmt.Errorf("http %s %s: url: %w", method, call.URL, err))
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, baton.Permanent(baton.Errorf(baton.Invalid, "http "+method, "url %q: want an absolute http or https URL", rawURL))
	}
	target := u.Redacted()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("http %s %s: "+format, append([]any{method, target}, args...)...)
	}
	if len(hosts) > 0 && !hostAllowed(hosts, u) {
		return nil, nil, baton.Permanent(baton.Errorf(baton.Invalid, fmt.Sprintf("http %s %s", method, target),
			"the host %s is not in the flow's hosts [%s]: add it there, or correct the URL", u.Host, strings.Join(hosts, ", ")))
	}
	name, err := Render(call.Session, data)
	if err != nil {
		return nil, nil, baton.Permanent(fail("session: %w", err))
	}
	headers := make(map[string]string, len(call.Headers))
	for k, v := range call.Headers {
		if headers[k], err = Render(v, data); err != nil {
			return nil, nil, baton.Permanent(fail("header %s: %w", k, err))
		}
		if reason := badHeader(k, headers[k]); reason != "" {
			return nil, nil, baton.Permanent(baton.Errorf(baton.Invalid, fmt.Sprintf("http %s %s", method, target), "header %q: %s", k, reason))
		}
	}
	body, err := Render(call.Body, data)
	if err != nil {
		return nil, nil, baton.Permanent(fail("body: %w", err))
	}

	sess := c.session(runID, name)
	sess.mu.Lock()
	for k, v := range headers {
		sess.headers.Set(k, v)
	}
	header := sess.headers.Clone()
	sess.mu.Unlock()
	if body != "" && header.Get("Content-Type") == "" {
		if json.Valid([]byte(body)) {
			header.Set("Content-Type", "application/json")
		} else {
			header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}

	select {
	case c.wait <- struct{}{}:
	default:
		return nil, nil, fail("%d calls are already waiting for one of the %d connection slots: the step retries by its policy; if this is common, raise flow.HTTPConfig MaxWaiting or MaxConcurrent", c.cfg.MaxWaiting, c.cfg.MaxConcurrent)
	}
	defer func() { <-c.wait }()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fail("waiting for a free connection slot: %w", ctx.Err())
	}
	defer func() { <-c.sem }()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var reqBody io.Reader
	if body != "" {
		reqBody = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reqBody)
	if err != nil {
		return nil, nil, baton.Permanent(fail("%w", err))
	}
	req.Header = header
	client := &http.Client{Transport: c.cfg.Transport, Jar: sess.jar, CheckRedirect: sameOrigin}
	resp, err := client.Do(req)
	if err != nil {
		err = c.cause(ctx, err)
		var cross *crossOriginError
		if errors.As(err, &cross) {
			return nil, nil, baton.Permanent(fail("%w", err))
		}
		return nil, nil, fail("%w", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return nil, nil, fail("status %d, reading the body: %w", resp.StatusCode, c.cause(ctx, err))
	}
	if len(got) > maxResponseBody {
		return nil, nil, baton.Permanent(fail("status %d: the response body is over %d bytes", resp.StatusCode, maxResponseBody))
	}

	result, err = resultDocument(resp, got)
	if err != nil {
		return nil, nil, baton.Permanent(fail("status %d: %w", resp.StatusCode, err))
	}
	switch s := resp.StatusCode; {
	case s >= 500 || s == http.StatusTooManyRequests:
		err := fail("status %d %s", s, snippet(got))
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			err = baton.RetryAfter(d, err)
		}
		return result, nil, err
	case s >= 400:
		return result, nil, baton.Permanent(fail("status %d %s", s, snippet(got)))
	}

	vars = make(map[string]json.RawMessage, len(call.Map))
	var missing []string
	for name, path := range call.Map {
		v, ok := Lookup(result, path)
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, path))
			continue
		}
		vars[name] = v
	}
	if missing != nil {
		slices.Sort(missing)
		return result, nil, baton.Permanent(fail("status %d: the response has no value for %s", resp.StatusCode, strings.Join(missing, ", ")))
	}
	return result, vars, nil
}

// crossOriginError is a redirect sameOrigin refused.
type crossOriginError struct{ to *url.URL }

func (e *crossOriginError) Error() string {
	return fmt.Sprintf("redirected to another origin, %s: not followed, since the session's headers and cookies would go there; call that URL in a step of its own", e.to.Redacted())
}

// sameOrigin follows redirects within the origin of the first request (as
// http.Client does, up to 10) and refuses any other.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(hostPort(req.URL), hostPort(first)) {
		return &crossOriginError{to: req.URL}
	}
	return nil
}

// hostPort is u's host with its port, the scheme's default when u has none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// hostAllowed reports whether u's host is one of hosts: an entry with a
// port ("127.0.0.1:8080") matches that host and port, one without
// ("api.example.com") the host on any port. Host names compare without
// regard to case.
func hostAllowed(hosts []string, u *url.URL) bool {
	for _, h := range hosts {
		if strings.EqualFold(h, u.Hostname()) || strings.EqualFold(h, hostPort(u)) || strings.EqualFold(h, u.Host) {
			return true
		}
	}
	return false
}

// cause unwraps the *url.Error of a failed request (it repeats the method
// and URL) and names our own timeout.
func (c *HTTPClient) cause(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v: %w", c.cfg.Timeout, context.DeadlineExceeded)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func resultDocument(resp *http.Response, body []byte) (json.RawMessage, error) {
	doc := struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	}{Status: resp.StatusCode, Headers: make(map[string]string, len(resp.Header))}
	for k, v := range resp.Header {
		if k != "Set-Cookie" {
			doc.Headers[k] = strings.Join(v, ", ")
		}
	}
	if json.Valid(body) {
		doc.Body = body
	} else {
		s, err := json.Marshal(string(body))
		if err != nil {
			return nil, err
		}
		doc.Body = s
	}
	return json.Marshal(doc)
}

// badHeader says what is wrong with a header, which the transport would
// refuse (and a refusal there would look worth retrying).
func badHeader(name, value string) string {
	if name == "" {
		return "an empty name"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return fmt.Sprintf("the name has the character %q", c)
		}
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return "the value has a line break or a NUL"
	}
	return ""
}

// snippet is up to 200 bytes of a response body for an error message.
func snippet(body []byte) string {
	const limit = 200
	cut := len(body) > limit
	if cut {
		body = body[:limit]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1] // do not split a character
		}
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))
	if s == "" {
		return ""
	}
	if cut {
		s += "..."
	}
	return strconv.Quote(s)
}

func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(secs) * time.Second, secs > 0
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		return d, d > 0
	}
	return 0, false
}

func (c *HTTPClient) session(runID, name string) *httpSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	sessions := c.runs[runID]
	if sessions == nil {
		sessions = map[string]*httpSession{}
		c.runs[runID] = sessions
	}
	s := sessions[name]
	if s == nil {
		jar, _ := cookiejar.New(nil) // never fails without options
		s = &httpSession{jar: jar, headers: http.Header{}}
		sessions[name] = s
	}
	return s
}

// Forget drops the sessions (cookies and headers) of a finished run.
func (c *HTTPClient) Forget(runID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.runs, runID)
}
