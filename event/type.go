package event

import (
	"strconv"

	"github.com/batonhq/baton"
)

// ParseType splits a versioned event type such as "order.placed.v1" into its
// name ("order.placed") and version (1).
//
// A type is dot-separated segments of lower-case letters, digits, '_' and
// '-': at least one name segment, then a version segment v<N> with N >= 1
// written without leading zeros, so that every version has one spelling.
// It is at most MaxTypeLength bytes long.
func ParseType(typ string) (name string, version int, err error) {
	name, version, reason := parseType(typ)
	if reason != "" {
		return "", 0, baton.Errorf(baton.Invalid, "parse type", "%s", typeError(typ, reason))
	}
	return name, version, nil
}

func typeError(typ, reason string) string {
	if len(typ) > 64 {
		typ = typ[:64] + "…" // the error need not carry a huge type whole
	}
	return "bad event type " + strconv.Quote(typ) + ": " + reason + ` (want name.vN, e.g. "order.placed.v1")`
}

// MaxTypeLength is the longest event type, in bytes: the longest routing
// key AMQP 0-9-1 carries, and far more than a name needs. Transports and
// stores key by type; an unbounded one would let a caller grow them.
const MaxTypeLength = 255

// parseType returns a reason instead of an error so that the valid case,
// which is on the hot path of every decode, allocates nothing.
func parseType(typ string) (name string, version int, reason string) {
	if typ == "" {
		return "", 0, "empty"
	}
	if len(typ) > MaxTypeLength {
		return "", 0, "longer than " + strconv.Itoa(MaxTypeLength) + " bytes"
	}
	dot := -1
	start := 0
	for i := 0; i <= len(typ); i++ {
		if i < len(typ) && typ[i] != '.' {
			if c := typ[i]; !typeByte(c) {
				if 'A' <= c && c <= 'Z' {
					return "", 0, "upper-case letters are not allowed"
				}
				return "", 0, "character " + strconv.QuoteRune(rune(c)) + " is not allowed; use a-z, 0-9, '_' and '-'"
			}
			continue
		}
		if i == start {
			return "", 0, "empty segment"
		}
		if i < len(typ) {
			dot = i
		}
		start = i + 1
	}
	if dot < 0 {
		return "", 0, "no name before the version"
	}
	v := typ[dot+1:]
	if v[0] != 'v' || len(v) == 1 {
		return "", 0, "last segment " + strconv.Quote(v) + " is not a version v<N>"
	}
	digits := v[1:]
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return "", 0, "last segment " + strconv.Quote(v) + " is not a version v<N>"
		}
		n = n*10 + int(c-'0')
	}
	if len(digits) > 9 {
		return "", 0, "version " + strconv.Quote(v) + " is too large"
	}
	if digits[0] == '0' {
		if n == 0 {
			return "", 0, "version must be at least v1"
		}
		return "", 0, "version " + strconv.Quote(v) + " has a leading zero"
	}
	return typ[:dot], n, ""
}

func typeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// typeString is the inverse of ParseType.
func typeString(name string, version int) string {
	return name + ".v" + strconv.Itoa(version)
}
