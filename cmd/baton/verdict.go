package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/batonhq/baton/store"
)

// typeName is an event type without its version: "order.completed".
func typeName(typ string) string {
	if i := strings.LastIndex(typ, ".v"); i > 0 {
		if _, err := strconv.Atoi(typ[i+2:]); err == nil {
			return typ[:i]
		}
	}
	return typ
}

// verdict says where a transaction stands. It ended when an event whose name
// ends in .completed or .cancelled was published; it stopped when an event
// was dead-lettered and not replayed since.
func verdict(h []store.Entry) string {
	for _, e := range h {
		if e.Outcome != store.Published {
			continue
		}
		switch name := typeName(e.EventType); {
		case strings.HasSuffix(name, ".completed"):
			return "completed"
		case strings.HasSuffix(name, ".cancelled"), strings.HasSuffix(name, ".canceled"):
			return "cancelled"
		}
	}
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		if e.Outcome == store.Replayed {
			break
		}
		if e.Outcome == store.DeadLettered {
			return fmt.Sprintf("dead-lettered: %s (group %s, event %s; see baton dlq list)", e.Error, e.Group, shortID(e.EventID))
		}
	}
	if len(h) == 0 {
		return "unknown"
	}
	return "in progress: last step: " + describe(h[len(h)-1])
}
