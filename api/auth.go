package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
)

// tokenDigest is a configured token, kept as its digest, and its scope.
type tokenDigest struct {
	sum   [sha256.Size]byte
	scope Scope
}

// caller is who made a request: the scope of its token, and the token's
// index among the configured ones (-1 without tokens).
type caller struct {
	scope Scope
	token int
}

type callerKey struct{}

// callerOf returns the caller authenticate found; without tokens, an
// anonymous admin.
func callerOf(ctx context.Context) caller {
	if c, ok := ctx.Value(callerKey{}).(caller); ok {
		return c
	}
	return caller{scope: ScopeAdmin, token: -1}
}

// authenticate requires a configured token, in the bearer header or the
// dashboard's session cookie, on every path but the health checks, and
// notes its scope for allow.
func (h *handler) authenticate(next http.Handler) http.Handler {
	if len(h.tokens) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token := bearer(r)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton"`)
			writeError(w, baton.Errorf(Unauthorized, r.Method+" "+r.URL.Path, `a token is required: send "Authorization: Bearer <token>"`))
			return
		}
		i := h.known(token)
		if i < 0 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton", error="invalid_token"`)
			writeError(w, baton.Errorf(Unauthorized, r.Method+" "+r.URL.Path, "the token is not one this server accepts"))
			return
		}
		ctx := context.WithValue(r.Context(), callerKey{}, caller{scope: h.tokens[i].scope, token: i})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// SessionCookie is the cookie in which the dashboard (package ui) keeps the
// token a user logged in with; the API accepts it as it accepts the
// bearer header.
const SessionCookie = "baton_session"

// bearer returns the scheme and token of the Authorization header or, when
// there is none, the token of the session cookie as a bearer token.
func bearer(r *http.Request) (scheme, token string) {
	if hdr := r.Header.Get("Authorization"); hdr != "" {
		scheme, token, _ = strings.Cut(hdr, " ")
		return scheme, strings.TrimSpace(token)
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return "Bearer", c.Value
	}
	return "", ""
}

// allow lets a request through when its token's scope is need or above.
func (h *handler) allow(need Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := callerOf(r.Context()); c.scope < need {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton", error="insufficient_scope", scope="`+need.String()+`"`)
			h.reject(w, r, baton.Errorf(Forbidden, r.Method+" "+r.URL.Path,
				"this needs a token with the %s scope; this token has %s (docs/security.md)", need, c.scope))
			return
		}
		next(w, r)
	}
}

// known returns the index of token among the configured tokens, -1 when it
// is none of them. It compares digests in constant time: digests of equal
// length hide the tokens' lengths too, and looking at every token hides
// which one matched.
func (h *handler) known(token string) int {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range h.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], h.tokens[i].sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}
