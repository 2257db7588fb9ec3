// Package client is the Go client of Baton's HTTP API. Its methods mirror
// the coordinator's (StartRun, Run, Runs, CancelRun, SignalRun, Flows), the
// scheduler's (Schedules, PutSchedule, PauseSchedule, ResumeSchedule,
// DeleteSchedule), the bus's (Publish, and ReplayDead for bus.Replay) and the
// store's (History, Since, ListDead, Dead, DropDead), and traffic.Build's
// (Map). An error the API reports comes back as a *baton.Error with the code
// the server gave it, so callers handle a remote not_found exactly as a
// local one.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

// Client talks to one Baton API.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as the bearer token of every request, for a server
// configured with tokens.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// New returns a client of the API at baseURL ("http://127.0.0.1:7070"),
// using httpClient, or http.DefaultClient when it is nil. Requests carry no
// timeout of their own: give each a context with a deadline.
func New(baseURL string, httpClient *http.Client, opts ...Option) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Unix returns a client of the API served on the unix socket at path, as a
// running baton demo or server does at DIR/baton.sock.
func Unix(path string, opts ...Option) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}
	return New("http://baton", &http.Client{Transport: tr}, opts...)
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// History returns the journal entries of one correlation id in order; none
// when nothing was journaled under it. It reads every page the server
// answers with.
func (c *Client) History(ctx context.Context, correlationID string) ([]store.Entry, error) {
	all := []store.Entry{}
	q := url.Values{"limit": {strconv.Itoa(api.MaxLimit)}}
	for {
		var h api.History
		if _, err := c.do(ctx, http.MethodGet, "/v1/history/"+url.PathEscape(correlationID)+"?"+q.Encode(), nil, &h); err != nil {
			return nil, err
		}
		all = append(all, h.Entries...)
		if h.Next == 0 {
			return all, nil
		}
		q.Set("after", strconv.FormatUint(h.Next, 10))
	}
}

// Since returns up to limit journal entries with Seq > after, in order.
func (c *Client) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	return c.SinceWait(ctx, after, limit, 0)
}

// SinceWait is Since, but when there is no entry after after yet, the server
// waits up to wait (at most api.MaxWait) for one before answering with none.
func (c *Client) SinceWait(ctx context.Context, after uint64, limit int, wait time.Duration) ([]store.Entry, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	q.Set("limit", strconv.Itoa(limit))
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var p api.JournalPage
	_, err := c.do(ctx, http.MethodGet, "/v1/journal?"+q.Encode(), nil, &p)
	return p.Entries, err
}

// Map returns the choreography map of the journal's last window, as
// traffic.Build draws it on the server.
func (c *Client) Map(ctx context.Context, window time.Duration) (traffic.Map, error) {
	var m traffic.Map
	_, err := c.do(ctx, http.MethodGet, "/v1/map?window="+url.QueryEscape(window.String()), nil, &m)
	return m, err
}

// ListDead returns up to limit dead letters after the id after, oldest
// first.
func (c *Client) ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	q.Set("limit", strconv.Itoa(limit))
	var p api.DeadLetterPage
	_, err := c.do(ctx, http.MethodGet, "/v1/dead-letters?"+q.Encode(), nil, &p)
	return p.DeadLetters, err
}

// Dead returns one dead letter; an error that is baton.ErrNotFound when
// there is none with id.
func (c *Client) Dead(ctx context.Context, id string) (store.DeadLetter, error) {
	var d store.DeadLetter
	_, err := c.do(ctx, http.MethodGet, "/v1/dead-letters/"+url.PathEscape(id), nil, &d)
	return d, err
}

// ReplayDead publishes a dead letter again and drops it, as bus.Replay.
func (c *Client) ReplayDead(ctx context.Context, id string) error {
	return second(c.do(ctx, http.MethodPost, "/v1/dead-letters/"+url.PathEscape(id)+"/replay", nil, nil))
}

// DropDead deletes a dead letter.
func (c *Client) DropDead(ctx context.Context, id string) error {
	return second(c.do(ctx, http.MethodDelete, "/v1/dead-letters/"+url.PathEscape(id), nil, nil))
}

// do sends a request with in as its JSON body (when not nil) and decodes a
// successful response into out (when not nil), or the error body into a
// *baton.Error. It returns the response's status.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	return c.doHeader(ctx, method, path, nil, in, out)
}

func (c *Client) doHeader(ctx context.Context, method, path string, header http.Header, in, out any) (int, error) {
	op := method + " " + strings.SplitN(path, "?", 2)[0]
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, baton.Errorf(baton.Invalid, op, "encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, baton.Errorf(baton.Invalid, op, "%w", err)
	}
	maps.Copy(req.Header, header)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, baton.Errorf(baton.Unavailable, op, "%w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, decodeError(op, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return resp.StatusCode, ctx.Err()
		}
		return resp.StatusCode, baton.Errorf(baton.Internal, op, "decode response: %w", err)
	}
	return resp.StatusCode, nil
}

// decodeError turns an error response into a *baton.Error with the code the
// server sent, or, when the body is not Baton's (a proxy's page), a code
// derived from the status.
func decodeError(op string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb api.ErrorBody
	if err := json.Unmarshal(raw, &eb); err == nil && eb.Error.Code != "" {
		return &baton.Error{Code: eb.Error.Code, Err: errors.New(eb.Error.Message)}
	}
	msg := strings.TrimSpace(string(raw))
	if msg == "" {
		msg = resp.Status
	}
	return &baton.Error{Code: codeOf(resp.StatusCode), Op: op, Err: fmt.Errorf("%s", msg)}
}

func codeOf(status int) baton.Code {
	for _, c := range []baton.Code{baton.Invalid, baton.NotFound, baton.Conflict, baton.Unavailable, api.Unauthorized, api.TooLarge, api.MethodNotAllowed,
		api.Forbidden, api.UnsupportedMediaType, api.TooManyRequests} {
		if api.Status(c) == status {
			return c
		}
	}
	return baton.Internal
}
