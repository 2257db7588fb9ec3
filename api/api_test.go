package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

func newServer(t *testing.T) (*httptest.Server, *embedded.Backend) {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(b, b))
	t.Cleanup(func() {
		srv.Close()
		b.Close()
	})
	return srv, b
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[baton.Code]int{
		baton.Invalid:     400,
		baton.NotFound:    404,
		baton.Conflict:    409,
		baton.Unavailable: 503,
		baton.Internal:    500,
		"something-else":  500,
	} {
		if got := api.Status(code); got != want {
			t.Errorf("Status(%q) = %d, want %d", code, got, want)
		}
	}
}

// The error responses: status from the code, and the JSON body.
func TestErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         baton.Code
	}{
		{"GET", "/v1/dead-letters/999", 404, baton.NotFound},
		{"GET", "/v1/dead-letters/not-a-number", 404, baton.NotFound},
		{"POST", "/v1/dead-letters/999/replay", 404, baton.NotFound},
		{"DELETE", "/v1/dead-letters/999", 404, baton.NotFound},
		{"GET", "/v1/journal?after=x", 400, baton.Invalid},
		{"GET", "/v1/journal?limit=0", 400, baton.Invalid},
		{"GET", "/v1/journal?limit=100000", 400, baton.Invalid},
		{"GET", "/v1/journal?wait=forever", 400, baton.Invalid},
		{"GET", "/v1/dead-letters?limit=-3", 400, baton.Invalid},
		{"GET", "/v2/nothing", 404, baton.NotFound},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var body api.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Error.Code != tc.code || body.Error.Message == "" {
				t.Errorf("error %+v, want code %s and a message", body.Error, tc.code)
			}
		})
	}
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestJournalAndHistory(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	ctx := context.Background()
	for i := range 5 {
		err := b.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: fmt.Sprintf("o-%d", i%2),
			Outcome: store.Published, EventID: fmt.Sprint("e", i), EventType: "order.placed.v1"})
		if err != nil {
			t.Fatal(err)
		}
	}
	var page api.JournalPage
	get(t, srv.URL+"/v1/journal?limit=3", &page)
	if len(page.Entries) != 3 || page.Entries[0].EventID != "e0" {
		t.Fatalf("first page %+v", page.Entries)
	}
	get(t, fmt.Sprintf("%s/v1/journal?after=%d", srv.URL, page.Entries[2].Seq), &page)
	if len(page.Entries) != 2 || page.Entries[1].EventID != "e4" {
		t.Fatalf("second page %+v", page.Entries)
	}
	var h api.History
	get(t, srv.URL+"/v1/history/o-1", &h)
	if h.CorrelationID != "o-1" || len(h.Entries) != 2 || h.Entries[0].EventID != "e1" {
		t.Fatalf("history %+v", h)
	}
	get(t, srv.URL+"/v1/history/nobody", &h)
	if h.Entries == nil || len(h.Entries) != 0 {
		t.Fatalf("unknown history %+v, want an empty list", h)
	}
}

// A long poll answers as soon as an entry is journaled.
func TestJournalWait(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	got := make(chan api.JournalPage)
	go func() {
		var page api.JournalPage
		get(t, srv.URL+"/v1/journal?wait=30s", &page)
		got <- page
	}()
	time.Sleep(100 * time.Millisecond)
	if err := b.Append(context.Background(), store.Entry{Time: time.Now(), CorrelationID: "c", Outcome: store.Published, EventID: "late"}); err != nil {
		t.Fatal(err)
	}
	page := <-got
	if len(page.Entries) != 1 || page.Entries[0].EventID != "late" {
		t.Fatalf("long poll got %+v", page.Entries)
	}
}

func TestDeadLetterEndpoints(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	ctx := context.Background()
	if _, err := b.Subscribe(ctx, "payment", []string{"order.*"}); err != nil {
		t.Fatal(err)
	}
	body := `{"id":"e1","type":"order.placed.v1"}`
	for _, reason := range []string{"first", "second"} {
		err := b.AddDead(ctx, store.DeadLetter{Group: "payment", Type: "order.placed.v1", Body: []byte(body),
			EventID: "e1", CorrelationID: "o-1", Attempts: 4, Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
	}
	var page api.DeadLetterPage
	get(t, srv.URL+"/v1/dead-letters", &page)
	if len(page.DeadLetters) != 2 || page.DeadLetters[0].Reason != "first" || string(page.DeadLetters[0].Body) != body {
		t.Fatalf("list %+v", page.DeadLetters)
	}
	first, second := page.DeadLetters[0].ID, page.DeadLetters[1].ID
	get(t, srv.URL+"/v1/dead-letters?after="+first+"&limit=5", &page)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].ID != second {
		t.Fatalf("list after %s: %+v", first, page.DeadLetters)
	}
	var d store.DeadLetter
	get(t, srv.URL+"/v1/dead-letters/"+second, &d)
	if d.Reason != "second" || d.CorrelationID != "o-1" {
		t.Fatalf("show %+v", d)
	}

	resp, err := http.Post(srv.URL+"/v1/dead-letters/"+first+"/replay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rp api.Replayed
	json.NewDecoder(resp.Body).Decode(&rp)
	resp.Body.Close()
	if resp.StatusCode != 200 || rp.ID != first || rp.Status != "replayed" {
		t.Fatalf("replay: %s %+v", resp.Status, rp)
	}
	h, err := b.History(ctx, "o-1")
	if err != nil || len(h) != 1 || h[0].Outcome != store.Replayed {
		t.Fatalf("history after replay %+v %v", h, err)
	}

	req, _ := http.NewRequest("DELETE", srv.URL+"/v1/dead-letters/"+second, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("drop: %s", resp.Status)
	}
	get(t, srv.URL+"/v1/dead-letters", &page)
	if len(page.DeadLetters) != 0 {
		t.Fatalf("left after replay and drop: %+v", page.DeadLetters)
	}
	resp, err = http.Get(srv.URL + "/v1/dead-letters/" + second)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b2), `"not_found"`) {
		t.Fatalf("dropped letter: %s %s", resp.Status, b2)
	}
}
