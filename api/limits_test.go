package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/store"
)

// openStream opens GET /v1/stream with token and returns the response
// (200: the stream is open once its first line is read) and a function
// that closes it.
func openStream(t *testing.T, s *stack, token, query string) (*http.Response, *bufio.Scanner, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/v1/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 4<<20)
	if resp.StatusCode == 200 && (!lines.Scan() || !strings.HasPrefix(lines.Text(), "retry:")) {
		t.Fatalf("stream: no first line: %v", lines.Err())
	}
	return resp, lines, func() { cancel(); resp.Body.Close() }
}

// Event streams and long polls are bounded per token and per server, with
// 429 and a message saying which limit was met; a closed stream frees its
// place.
func TestStreamLimits(t *testing.T) {
	t.Parallel()
	const a, b = "stream-token-a-0123", "stream-token-b-0123"
	s := newStackWith(t, func(c *api.Config) {
		c.ScopedTokens = []api.Token{{Secret: a, Scope: api.ScopeRead}, {Secret: b, Scope: api.ScopeRead}}
		c.MaxStreams, c.MaxStreamsPerToken = 3, 2
	})
	refused := func(resp *http.Response, want string) {
		t.Helper()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("200, want 429 saying %q", want)
			return // an open stream: its body never ends
		}
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(raw), want) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%d %s (Retry-After %q), want 429 saying %q", resp.StatusCode, raw, resp.Header.Get("Retry-After"), want)
		}
	}
	r1, _, close1 := openStream(t, s, a, "")
	defer close1()
	r2, _, close2 := openStream(t, s, a, "")
	defer close2()
	if r1.StatusCode != 200 || r2.StatusCode != 200 {
		t.Fatalf("two streams of one token: %d, %d", r1.StatusCode, r2.StatusCode)
	}
	r3, _, close3 := openStream(t, s, a, "")
	refused(r3, "this token already holds its limit of 2")
	close3()
	r4, _, close4 := openStream(t, s, b, "")
	defer close4()
	if r4.StatusCode != 200 {
		t.Fatalf("another token's stream: %d", r4.StatusCode)
	}
	// The server holds 3: a long poll is one more.
	req, _ := http.NewRequest("GET", s.srv.URL+"/v1/journal?wait=5s", nil)
	req.Header.Set("Authorization", "Bearer "+b)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	refused(resp, "this server already holds its limit of 3")
	resp.Body.Close()
	// A short read is no held request.
	req, _ = http.NewRequest("GET", s.srv.URL+"/v1/journal", nil)
	req.Header.Set("Authorization", "Bearer "+b)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/journal without wait: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Closing a stream frees its place, once the server sees it gone.
	close1()
	for i := 0; ; i++ {
		r, _, c := openStream(t, s, a, "")
		c()
		if r.StatusCode == 200 {
			break
		}
		if i == 500 {
			t.Fatalf("a closed stream's place was never freed: %d", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingStore counts the journal reads of the API.
type countingStore struct {
	*embedded.Backend
	since atomic.Int64
}

func (c *countingStore) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	c.since.Add(1)
	return c.Backend.Since(ctx, after, limit)
}

// However many requests long-poll the journal, one reader polls the store
// for them; each reads its own page once, when there is something new.
func TestLongPollsShareOneReader(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cs := &countingStore{Backend: b}
	// The transport as a plain one (no Committer), so that the API takes
	// the counting store beside it; nothing here replays.
	h, err := api.New(api.Config{Store: cs, Transport: struct{ bus.Transport }{b}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	const pollers = 20
	poll := func(wait string) []api.JournalPage {
		var wg sync.WaitGroup
		pages := make([]api.JournalPage, pollers)
		for i := range pollers {
			wg.Go(func() { get(t, srv.URL+"/v1/journal?wait="+wait, &pages[i]) })
		}
		wg.Wait()
		return pages
	}
	// Nothing comes for 2s: each request reads once, and the one reader
	// about 40 times (every 50ms); each polling by itself read 800 times.
	for _, p := range poll("2s") {
		if len(p.Entries) != 0 {
			t.Fatalf("an empty journal gave %d entries", len(p.Entries))
		}
	}
	if n := cs.since.Load(); n > 200 {
		t.Errorf("%d long polls of 2s read the journal %d times; one shared reader reads it about 60 times", pollers, n)
	}
	// An entry wakes every request, with the entry.
	go func() {
		for cs.since.Load() < 2*pollers+60 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := b.Append(context.Background(), store.Entry{Time: time.Now(), CorrelationID: "c", Outcome: store.Published, EventID: "late"}); err != nil {
			t.Error(err)
		}
	}()
	for i, p := range poll("30s") {
		if len(p.Entries) != 1 || p.Entries[0].EventID != "late" {
			t.Errorf("poller %d got %+v, want the entry late", i, p.Entries)
		}
	}
}

// A refused start of nearly 1 MiB reaches a subscriber as a notification of
// a few KiB that says what was left out.
func TestRefusedStartIsTrimmedForSubscribers(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	resp, lines, closeStream := openStream(t, s, "", "?kind=run.invalid")
	defer closeStream()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	pad := strings.Repeat("x", 900<<10)
	r := s.do(t, "POST", "/v1/runs", map[string]any{"flow": "order", "input": map[string]string{"pad": pad}})
	r.apiError(t, http.StatusBadRequest)
	var data string
	for lines.Scan() {
		if d, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			data = d
			break
		}
	}
	if len(data) > 16<<10 {
		t.Errorf("the notification is %d bytes, want at most 16 KiB", len(data))
	}
	if !strings.Contains(data, `"request.input: `) || !strings.Contains(data, "bytes left out") || !strings.Contains(data, `"kind":"run.invalid"`) {
		t.Errorf("the notification %.300s does not say the input was left out", data)
	}
}

// GET /v1/history/{id} answers in pages; the client reads them all.
func TestHistoryPages(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	ctx := context.Background()
	const n = api.MaxLimit + 5
	entries := make([]store.Entry, n)
	for i := range entries {
		entries[i] = store.Entry{Time: time.Now(), CorrelationID: "long", Outcome: store.Published, EventID: fmt.Sprint("e", i), EventType: "order.placed.v1"}
	}
	if err := b.Append(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "other", Outcome: store.Published, EventID: "x"}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	path := "/v1/history/long?limit=400"
	for pages := 0; ; pages++ {
		var h api.History
		get(t, srv.URL+path, &h)
		if len(h.Entries) > 400 {
			t.Fatalf("a page of %d entries, want at most 400", len(h.Entries))
		}
		for _, e := range h.Entries {
			seen = append(seen, e.EventID)
		}
		if h.Next == 0 {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		if h.Next != h.Entries[len(h.Entries)-1].Seq {
			t.Errorf("next %d is not the last entry's seq %d", h.Next, h.Entries[len(h.Entries)-1].Seq)
		}
		path = fmt.Sprintf("/v1/history/long?limit=400&after=%d", h.Next)
	}
	if len(seen) != n || seen[0] != "e0" || seen[n-1] != fmt.Sprint("e", n-1) {
		t.Errorf("pages gave %d entries (first %v), want %d in order", len(seen), seen[:min(3, len(seen))], n)
	}
	var first api.History
	get(t, srv.URL+"/v1/history/long", &first)
	if len(first.Entries) != api.DefaultLimit || first.Next == 0 {
		t.Errorf("without a limit: %d entries, next %d; want %d and a next", len(first.Entries), first.Next, api.DefaultLimit)
	}
	all, err := client.New(srv.URL, nil).History(ctx, "long")
	if err != nil || len(all) != n || all[n-1].EventID != fmt.Sprint("e", n-1) {
		t.Errorf("client History: %d entries, %v; want %d", len(all), err, n)
	}
}

// A failure of the server answers a generic message and an error id; the
// detail is in the log under that id.
func TestServerErrorsSayNoDetail(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	h, err := api.New(api.Config{Store: b, Transport: b, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	b.Close()
	_, detail := b.ListDead(context.Background(), "", 1)
	if detail == nil {
		t.Fatal("a closed store answers")
	}
	_, err = client.New(srv.URL, nil).ListDead(context.Background(), "", 1)
	var be *baton.Error
	if err == nil || baton.ErrorCode(err) == baton.Invalid || !asError(err, &be) {
		t.Fatalf("list dead letters of a closed store: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "closed") || strings.Contains(msg, "embedded") {
		t.Errorf("the answer %q tells the internal error %q", msg, detail)
	}
	id := msg[strings.Index(msg, "error_id ")+len("error_id "):]
	id = strings.TrimRight(id, ")")
	if line := logLine(logs.String(), id); id == "" || !strings.Contains(line, "closed") {
		t.Errorf("error id %q: log line %q, want the detail", id, line)
	}
}

func asError(err error, target **baton.Error) bool { return errors.As(err, target) }
