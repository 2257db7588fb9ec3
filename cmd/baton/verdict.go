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

// verdict says where a transaction stands. A flow run journals how it
// ended (store.RunEnded), which the last such entry tells, with the reason
// for a failed or cancelled run. Without one, as under choreography, the
// transaction ended when an event whose name ends in .completed or
// .cancelled was published, and stopped when an event was dead-lettered and
// not replayed since.
func verdict(h []store.Entry) string {
	if v, ok := runEnd(h); ok {
		return v
	}
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

// runEnd is the verdict of the last run end journaled in h, if any.
func runEnd(h []store.Entry) (string, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		status, ok := e.Outcome.RunEnd()
		if !ok {
			continue
		}
		run := fmt.Sprintf("run %s of flow %s", e.EventID, e.EventType)
		if e.Error == "" {
			return fmt.Sprintf("%s (%s)", status, run), true
		}
		return fmt.Sprintf("%s: %s (%s; see baton run get %s)", status, e.Error, run, e.EventID), true
	}
	return "", false
}
