// Package expect watches declared expectations of choreography: "after
// payment.processed.v1, inventory.reserved.v1 or inventory.failed.v1
// within 30s, for the same correlation id". A Watcher raises an alert when
// one is broken (a notification, a metric, a journal entry that baton
// status shows) and clears it when the awaited event comes late.
//
// The watcher is a consumer group of its own (DefaultGroup): it receives
// its own copy of every event of the types the expectations name, as any
// service does. Each open instance is a run in the store's run index, of
// the reserved flow "expect:NAME" keyed by the correlation id, whose Wake
// is the deadline: so instances are durable, shared by every watcher on
// the store, and fired by exactly one of them (a compare-and-set on the
// run's revision). The coordinator leaves these runs alone, and run
// listings leave them out (flow.ReservedPrefix).
package expect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// Expectation says that after an event of one of the After types, an event
// of one of the Want types comes within Within, with the same correlation
// id.
type Expectation struct {
	// Name names the expectation in alerts, metrics and the journal:
	// letters, digits, '.', '-' and '_'.
	Name   string
	After  []string
	Want   []string
	Within time.Duration
}

// Validate reports what is wrong with x, naming the field.
func (x Expectation) Validate() error {
	if x.Name == "" {
		return baton.Errorf(baton.Invalid, "expectation", "name: give the expectation a name (it labels its alerts and metrics)")
	}
	for _, r := range x.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return baton.Errorf(baton.Invalid, "expectation "+x.Name, "name %q: want letters, digits, '.', '-' and '_' only", x.Name)
		}
	}
	op := "expectation " + x.Name
	if err := checkTypes(x.After); err != nil {
		return baton.Errorf(baton.Invalid, op, "after: %w", err)
	}
	if err := checkTypes(x.Want); err != nil {
		return baton.Errorf(baton.Invalid, op, "want: %w", err)
	}
	for _, t := range x.Want {
		if slices.Contains(x.After, t) {
			return baton.Errorf(baton.Invalid, op, "%s is in both after and want: an event cannot await itself", t)
		}
	}
	if x.Within <= 0 {
		return baton.Errorf(baton.Invalid, op, "within %v: give a positive duration, such as 30s", x.Within)
	}
	return nil
}

func checkTypes(types []string) error {
	if len(types) == 0 {
		return errors.New("give at least one event type, such as payment.processed.v1")
	}
	for i, t := range types {
		if _, _, err := event.ParseType(t); err != nil {
			return err
		}
		if slices.Contains(types[:i], t) {
			return fmt.Errorf("%s is given twice", t)
		}
	}
	return nil
}

// flowName is the reserved flow name of x's runs.
func (x Expectation) flowName() string { return flow.ReservedPrefix + x.Name }

// awaited says in words what x awaits: "inventory.reserved.v1 or
// inventory.failed.v1 within 30s of payment.processed.v1".
func (x Expectation) awaited(after string) string {
	return fmt.Sprintf("%s within %v of %s", strings.Join(x.Want, " or "), x.Within, after)
}

// Name returns the name of the expectation a journal entry of the
// watcher's (outcome store.ExpectationBroken or store.ExpectationMetLate)
// is about, and whether it is one.
func Name(e store.Entry) (string, bool) {
	if e.Outcome != store.ExpectationBroken && e.Outcome != store.ExpectationMetLate {
		return "", false
	}
	return strings.CutPrefix(e.Source, sourcePrefix)
}

// sourcePrefix begins the Source of the watcher's journal entries.
const sourcePrefix = "baton.expect/"
