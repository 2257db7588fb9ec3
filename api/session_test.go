package api_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/batonhq/baton/api"
)

// The dashboard's session cookie authenticates like the bearer header, and
// a header, when sent, is what counts.
func TestSessionCookie(t *testing.T) {
	t.Parallel()
	s := newStack(t, "first-token-0123456789")
	for _, tc := range []struct {
		name, cookie, header string
		status               int
	}{
		{"right cookie", "first-token-0123456789", "", 200},
		{"wrong cookie", "nope", "", 401},
		{"empty cookie", "", "", 401},
		{"wrong header beats a right cookie", "first-token-0123456789", "Bearer nope", 401},
	} {
		req, _ := http.NewRequest("GET", s.srv.URL+"/v1/dead-letters", nil)
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: tc.cookie})
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, resp.StatusCode, tc.status, raw)
		}
	}
}
