package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// Each scope does what it names and what the scopes below it do, and is
// refused the rest with 403 naming the scope needed.
func TestScopes(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *api.Config) {
		c.ScopedTokens = []api.Token{{Secret: readToken, Scope: api.ScopeRead}, {Secret: writeToken, Scope: api.ScopeWrite}}
		c.Tokens = []string{adminToken}
	})
	schedule := map[string]any{"name": "nightly", "flow": "order", "cron": "0 3 * * *"}
	ops := []struct {
		method, path string
		body         any
		need         api.Scope
	}{
		{"GET", "/v1/runs", nil, api.ScopeRead},
		{"GET", "/v1/flows", nil, api.ScopeRead},
		{"GET", "/v1/journal", nil, api.ScopeRead},
		{"GET", "/v1/dead-letters", nil, api.ScopeRead},
		{"GET", "/v1/schedules", nil, api.ScopeRead},
		{"POST", "/v1/events", map[string]any{"type": "order.placed.v1", "subject": "scoped"}, api.ScopeWrite},
		{"POST", "/v1/runs", map[string]any{"flow": "approval", "key": "scoped"}, api.ScopeWrite},
		{"POST", "/v1/runs/r-nope/cancel", nil, api.ScopeWrite},
		{"POST", "/v1/runs/r-nope/events", map[string]any{"type": "approval.granted.v1"}, api.ScopeWrite},
		{"POST", "/v1/schedules", schedule, api.ScopeAdmin},
		{"POST", "/v1/schedules/nightly/pause", nil, api.ScopeAdmin},
		{"POST", "/v1/schedules/nightly/resume", nil, api.ScopeAdmin},
		{"DELETE", "/v1/schedules/nightly", nil, api.ScopeAdmin},
		{"POST", "/v1/dead-letters/nope/replay", nil, api.ScopeAdmin},
		{"DELETE", "/v1/dead-letters/nope", nil, api.ScopeAdmin},
	}
	for _, tok := range []struct {
		secret string
		scope  api.Scope
	}{{readToken, api.ScopeRead}, {writeToken, api.ScopeWrite}, {adminToken, api.ScopeAdmin}} {
		s.token = tok.secret
		for _, op := range ops {
			r := s.do(t, op.method, op.path, op.body)
			if tok.scope >= op.need {
				if r.status == http.StatusForbidden || r.status == http.StatusUnauthorized {
					t.Errorf("%s token: %s %s: %d %s, want it allowed", tok.scope, op.method, op.path, r.status, r.body)
				}
				continue
			}
			e := r.apiError(t, http.StatusForbidden)
			if e.Code != api.Forbidden || !strings.Contains(e.Message, "the "+op.need.String()+" scope") {
				t.Errorf("%s token: %s %s: %s %q, want forbidden naming the %s scope", tok.scope, op.method, op.path, e.Code, e.Message, op.need)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
				t.Errorf("%s token: %s %s: WWW-Authenticate %q", tok.scope, op.method, op.path, got)
			}
		}
	}
}

func TestTokensTooShortOrUnscoped(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for name, cfg := range map[string]api.Config{
		"short admin":  {Tokens: []string{"fifteen-bytes!!"}},
		"short scoped": {ScopedTokens: []api.Token{{Secret: "short", Scope: api.ScopeRead}}},
		"no scope":     {ScopedTokens: []api.Token{{Secret: "long-enough-but-unscoped"}}},
	} {
		cfg.Store, cfg.Transport = s.b, s.b
		_, err := api.New(cfg)
		if baton.ErrorCode(err) != baton.Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	if _, err := api.New(api.Config{Store: s.b, Transport: s.b, Tokens: []string{"sixteen-bytes-ok"}}); err != nil {
		t.Errorf("a token of 16 bytes: %v", err)
	}
}

func TestParseTokens(t *testing.T) {
	t.Parallel()
	tokens, err := api.ParseTokens(`
# the support team's dashboard
read:` + readToken + `
  write:` + writeToken + `   # the shop's back end
ADMIN:` + adminToken + `,read:another-read-token-01
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Token{{readToken, api.ScopeRead}, {writeToken, api.ScopeWrite}, {adminToken, api.ScopeAdmin}, {"another-read-token-01", api.ScopeRead}}
	if len(tokens) != len(want) {
		t.Fatalf("%d tokens, want %d: %v", len(tokens), len(want), tokens)
	}
	for i := range want {
		if tokens[i] != want[i] {
			t.Errorf("token %d: %v, want %v", i, tokens[i], want[i])
		}
	}
	for text, wantErr := range map[string]string{
		"read:" + readToken + "\nshort:" + writeToken: `line 2: scope "short"`,
		"\n\nread:tiny-secret":                        "line 3: a token of 11 bytes (scope read) is too short",
		"# one\n" + writeToken:                        "line 2: an entry without a scope",
	} {
		_, err := api.ParseTokens(text)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: %v, want %q", text, err, wantErr)
			continue
		}
		if strings.Contains(err.Error(), "tiny-secret") || strings.Contains(err.Error(), writeToken) {
			t.Errorf("the error %q shows the token", err)
		}
	}
}
