package natsbus

import (
	"strings"

	"github.com/batonhq/baton"
)

// token maps a consumer group name to one NATS subject token that is also a
// valid durable consumer name: ASCII letters, digits and '-' are kept, and
// every other byte, '_' included, becomes '_' followed by two upper-case hex
// digits. "orders-payment" stays as it is; "orders.payment" becomes
// "orders_2Epayment". The mapping is one-to-one, so two groups never share a
// consumer, and its output never holds '_' followed by anything but two hex
// digits, which keeps the suffix of the directed consumer (see directedName)
// free of collisions.
func token(group string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(group))
	for i := 0; i < len(group); i++ {
		c := group[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// directedName is the durable name of the consumer that receives the
// messages sent to one group with PublishTo.
func directedName(group string) string { return token(group) + "_to" }

// checkType reports whether typ can be the last part of a subject: dotted
// tokens, none empty, no wildcards or whitespace.
func checkType(op, typ string) error {
	if typ == "" {
		return baton.Errorf(baton.Invalid, op, "message has no type")
	}
	for tok := range strings.SplitSeq(typ, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return baton.Errorf(baton.Invalid, op, "type %q cannot be a NATS subject: want dot-separated tokens without wildcards or whitespace", typ)
		}
	}
	return nil
}

// checkPattern is checkType for a pattern: "*" tokens and a final ">" are
// allowed.
func checkPattern(op, p string) error {
	toks := strings.Split(p, ".")
	for i, tok := range toks {
		if tok == "*" || tok == ">" && i == len(toks)-1 {
			continue
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return baton.Errorf(baton.Invalid, op, "pattern %q: want dot-separated tokens, \"*\" for one, a final \">\" for the rest", p)
		}
	}
	return nil
}

// cover returns one pattern matching at least every type the patterns
// match, as narrow as a simple rule allows, because NATS 2.9 gives a
// consumer a single filter subject. Patterns of one length without ">" are
// merged token by token ("a.b.v1", "a.c.v1" -> "a.*.v1"); otherwise the
// longest common prefix of tokens that leaves every pattern at least one
// token is followed by ">" ("a.b.v2", "a.c.d.v1" -> "a.>"). The consumer
// filters the rest on the client.
func cover(patterns []string) string {
	if len(patterns) == 1 {
		return patterns[0]
	}
	split := make([][]string, len(patterns))
	sameLen, anyGT := true, false
	minLen := -1
	for i, p := range patterns {
		split[i] = strings.Split(p, ".")
		n := len(split[i])
		if split[i][n-1] == ">" {
			anyGT = true
		}
		if i > 0 && n != len(split[0]) {
			sameLen = false
		}
		if minLen < 0 || n < minLen {
			minLen = n
		}
	}
	if sameLen && !anyGT {
		out := make([]string, len(split[0]))
		for j := range out {
			out[j] = split[0][j]
			for _, s := range split[1:] {
				if s[j] != out[j] {
					out[j] = "*"
					break
				}
			}
		}
		return strings.Join(out, ".")
	}
	var prefix []string
	for j := 0; j < minLen-1; j++ {
		tok := split[0][j]
		if tok == ">" {
			break
		}
		same := true
		for _, s := range split[1:] {
			if s[j] != tok {
				same = false
				break
			}
		}
		if !same {
			break
		}
		prefix = append(prefix, tok)
	}
	return strings.Join(append(prefix, ">"), ".")
}

// reduce drops the patterns that another pattern of the list already
// covers, and duplicates, so that "order.>" alone stands for "order.>",
// "order.placed.v1" and "order.*.v1".
func reduce(patterns []string) []string {
	var out []string
	for i, p := range patterns {
		covered := false
		for j, q := range patterns {
			if i == j {
				continue
			}
			// q covers p when every type p matches, q matches: check with
			// p's own tokens, as a type in which "*" and ">" are literal
			// wildcards. A duplicate is kept once: the first.
			if subsumes(q, p) && (!subsumes(p, q) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// subsumes reports whether every type that pattern b matches, a matches.
func subsumes(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, x := range at {
		if x == ">" {
			return i < len(bt)
		}
		if i >= len(bt) {
			return false
		}
		y := bt[i]
		switch {
		case y == ">":
			return false
		case x == "*":
		case x != y || y == "*":
			return false
		}
	}
	return len(at) == len(bt)
}
