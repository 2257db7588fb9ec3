package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
)

// SessionCookie is the cookie in which the dashboard (package ui) keeps the
// token a user logged in with; the API accepts it as it accepts the
// bearer header.
const SessionCookie = "baton_session"

// authenticate requires a configured token, in the bearer header or the
// dashboard's session cookie, on every path but the health checks.
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
		if !h.known(token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton", error="invalid_token"`)
			writeError(w, baton.Errorf(Unauthorized, r.Method+" "+r.URL.Path, "the token is not one this server accepts"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

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

// known compares token with every configured token in constant time:
// comparing digests of equal length hides the tokens' lengths too, and
// looking at every token hides which one matched.
func (h *handler) known(token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range h.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], h.tokens[i][:])
	}
	return ok == 1
}
