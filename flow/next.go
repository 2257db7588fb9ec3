package flow

import (
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// NextTick returns when sc ticks next after after, as the scheduler counts
// ticks (cron in UTC unless the expression names a zone; Every on its
// multiples). A paused schedule still has one: pausing skips ticks, it does
// not move them.
func NextTick(sc store.Schedule, after time.Time) (time.Time, error) {
	spec, err := parseSchedule(sc)
	if err != nil {
		return time.Time{}, baton.Errorf(baton.Invalid, "schedule "+sc.Name, "%w", err)
	}
	return spec.next(after), nil
}
