package api

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton"
)

// Scope is what a token may do. Each scope includes the ones below it:
// admin includes write, which includes read.
type Scope int

const (
	// ScopeRead reads: runs, flows, schedules, the journal, the map, dead
	// letters, the event stream.
	ScopeRead Scope = iota + 1
	// ScopeWrite also starts, cancels and signals runs, and publishes
	// events.
	ScopeWrite
	// ScopeAdmin also creates, replaces, pauses, resumes and deletes
	// schedules, and replays and drops dead letters.
	ScopeAdmin
)

var scopeNames = map[Scope]string{ScopeRead: "read", ScopeWrite: "write", ScopeAdmin: "admin"}

func (s Scope) String() string {
	if name, ok := scopeNames[s]; ok {
		return name
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ParseScope reads "read", "write" or "admin".
func ParseScope(s string) (Scope, error) {
	for scope, name := range scopeNames {
		if strings.EqualFold(s, name) {
			return scope, nil
		}
	}
	return 0, baton.Errorf(baton.Invalid, "scope", "%q is none of read, write, admin", s)
}

// MinTokenLength is the shortest token accepted, in bytes.
const MinTokenLength = 16

// Token is a bearer token and what it may do.
type Token struct {
	Secret string
	Scope  Scope
}

func (t Token) check() error {
	if _, ok := scopeNames[t.Scope]; !ok {
		return fmt.Errorf("a token has no scope: give read, write or admin")
	}
	if len(t.Secret) < MinTokenLength {
		return fmt.Errorf("a token of %d bytes (scope %s) is too short: give at least %d (openssl rand -hex 16 makes one)", len(t.Secret), t.Scope, MinTokenLength)
	}
	if strings.ContainsAny(t.Secret, " \t\r\n,") {
		return fmt.Errorf("a token (scope %s) holds a blank or a comma: give one without", t.Scope)
	}
	return nil
}

// ParseTokens reads scoped tokens, as a tokens file (baton server
// --tokens-file) or BATON_TOKENS hold them: SCOPE:TOKEN, separated by
// line breaks, blanks or commas; a # starts a comment that runs to the end
// of its line. For example:
//
//	# the dashboard of the support team
//	read:6f1c0d5e8a2b4f7391d0c3e5a7b9f1d2
//	write:0a9b8c7d6e5f40312233445566778899   # the shop's back end
//
// An error names the entry that is wrong by its line, never its token.
func ParseTokens(text string) ([]Token, error) {
	var tokens []Token
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			name, secret, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, baton.Errorf(baton.Invalid, "tokens", "line %d: an entry without a scope: write SCOPE:TOKEN, such as read:TOKEN", n+1)
			}
			scope, err := ParseScope(name)
			if err != nil {
				return nil, baton.Errorf(baton.Invalid, "tokens", "line %d: scope %q is none of read, write, admin", n+1, name)
			}
			t := Token{Secret: secret, Scope: scope}
			if err := t.check(); err != nil {
				return nil, baton.Errorf(baton.Invalid, "tokens", "line %d: %w", n+1, err)
			}
			tokens = append(tokens, t)
		}
	}
	return tokens, nil
}
