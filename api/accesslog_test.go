package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
)

// lockedBuffer is a log's output, written by the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Each request is one line at Info, written once it is answered, with
// neither the token nor the query.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var logs lockedBuffer
	h, err := api.New(api.Config{Store: b, Transport: b, Tokens: []string{"s3cret-token-0123"},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	bodies := map[string]int{}
	for _, tc := range []struct {
		path, auth string
		status     int
	}{
		{"/v1/dead-letters?limit=5&token=in-the-query", "Bearer s3cret-token-0123", 200},
		{"/v1/journal", "", 401},
		{"/healthz", "", 200},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %d, want %d: %s", tc.path, resp.StatusCode, tc.status, raw)
		}
		path, _, _ := strings.Cut(tc.path, "?")
		bodies[path] = len(raw)
	}

	// The line is written after the answer: wait for all three.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "\n") < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	for _, secret := range []string{"s3cret-token-0123", "Bearer", "in-the-query", "limit=5"} {
		if strings.Contains(out, secret) {
			t.Errorf("the access log shows %q:\n%s", secret, out)
		}
	}
	seen := map[string]bool{}
	for l := range strings.Lines(out) {
		var rec struct {
			Level, Msg, Method, Path, Remote string
			Status                           int
			Bytes                            int
			Duration                         *int64
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		want, ok := map[string]int{"/v1/dead-letters": 200, "/v1/journal": 401, "/healthz": 200}[rec.Path]
		switch {
		case !ok || seen[rec.Path]:
			t.Errorf("unexpected line for %q: %s", rec.Path, l)
		case rec.Level != "INFO" || rec.Msg != "api: request" || rec.Method != "GET":
			t.Errorf("line %s: want level INFO, msg \"api: request\", method GET", l)
		case rec.Status != want || rec.Bytes != bodies[rec.Path]:
			t.Errorf("line %s: want status %d and bytes %d", l, want, bodies[rec.Path])
		case rec.Duration == nil || *rec.Duration < 0 || !strings.HasPrefix(rec.Remote, "127.0.0.1:"):
			t.Errorf("line %s: want a duration and the client's address", l)
		}
		seen[rec.Path] = true
	}
	if len(seen) != 3 {
		t.Errorf("want a line for each of the 3 requests:\n%s", out)
	}
}
