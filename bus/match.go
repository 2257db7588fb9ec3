package bus

import "strings"

// Match reports whether an event type matches a pattern. Types and patterns
// are dot-separated; "*" matches exactly one segment and a final ">" matches
// one or more: "order.*.v1" matches "order.placed.v1", "order.>" matches
// every order event.
func Match(pattern, typ string) bool {
	for {
		pseg, prest, pmore := strings.Cut(pattern, ".")
		if pseg == ">" && !pmore {
			return typ != ""
		}
		tseg, trest, tmore := strings.Cut(typ, ".")
		if pseg != "*" && pseg != tseg || tseg == "" {
			return false
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pattern, typ = prest, trest
	}
}
