package flow_test

import (
	"testing"
	"time"

	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

func TestNextTick(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 17, 0, 0, time.UTC)
	for _, c := range []struct {
		sc   store.Schedule
		want time.Time
	}{
		{store.Schedule{Name: "hourly", Cron: "@hourly"}, time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)},
		{store.Schedule{Name: "five", Cron: "*/5 * * * *"}, time.Date(2026, 12, 6, 10, 20, 0, 0, time.UTC)},
		{store.Schedule{Name: "every", Every: 10 * time.Minute}, time.Date(2026, 12, 6, 10, 20, 0, 0, time.UTC)},
	} {
		got, err := flow.NextTick(c.sc, at)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s: NextTick = %v, %v; want %v", c.sc.Name, got, err, c.want)
		}
	}
	if _, err := flow.NextTick(store.Schedule{Name: "bad", Cron: "61 * * * *"}, at); err == nil {
		t.Error("a malformed cron expression has a next tick")
	}
}
