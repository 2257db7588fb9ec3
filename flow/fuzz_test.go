package flow

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
)

// FuzzLoad reads any document as flow definitions. It never panics; what it
// refuses is a coded invalid error; the flows it loads are valid, and
// written as JSON they load again as the same flows.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(orderFlowYAML))
	f.Add([]byte(`{"flows":[{"name":"a","version":1,"steps":[{"name":"s","sleep":"1s"}]}]}`))
	f.Add([]byte(`[{"name":"a","version":1,"steps":[{"name":"s","send":{"type":"x.v1"},"timeout":"1m","retry":{"max_attempts":2}}]}]`))
	f.Add([]byte("name: a\nversion: 1\nsteps:\n  - name: w\n    wait: {type: x.v1}\n  - name: f\n    fail: no\n"))
	f.Add([]byte("name: &a a\nversion: *a\nsteps: [{name: s, until: '{{input.at}}'}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		flows, err := Load(b)
		if err != nil {
			if baton.ErrorCode(err) != baton.Invalid {
				t.Fatalf("refused with %v, which is not coded invalid", err)
			}
			return
		}
		for i := range flows {
			if err := flows[i].Validate(); err != nil {
				t.Fatalf("loaded flow %d, which does not validate: %v", i, err)
			}
		}
		out, err := json.Marshal(flows)
		if err != nil {
			t.Fatalf("loaded %+v, which does not encode: %v", flows, err)
		}
		again, err := Load(out)
		if err != nil {
			t.Fatalf("loaded flows that, written as %s, load as %v", out, err)
		}
		if !reflect.DeepEqual(normal(t, flows), normal(t, again)) {
			t.Fatalf("loaded %s\nwhich loads again as %s", out, mustJSON(t, again))
		}
	})
}

// normal is flows as generic JSON, so that the input schemas compare by
// value, not by their spelling.
func normal(t *testing.T, flows []Flow) any {
	var v any
	if err := json.Unmarshal(mustJSON(t, flows), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzCron checks any schedule as Put does: a cron expression, or an
// interval when there is none. It never panics (robfig/cron's parser does
// on a few inputs, which parseCron catches); what it refuses is a coded
// invalid error; a schedule it takes ticks strictly forward.
func FuzzCron(f *testing.F) {
	for _, expr := range []string{"*/5 * * * *", "0 9 * * MON-FRI", "@daily", "@every 90s", "CRON_TZ=Europe/Zurich 30 2 * * *",
		"TZ=", "0 0 30 2 *", "60 * * * *", "@every -1s", "1-100/0 * * * *", "* * * * * *"} {
		f.Add(expr, int64(0))
	}
	f.Add("", int64(time.Second))
	f.Add("", int64(time.Millisecond))
	f.Fuzz(func(t *testing.T, expr string, every int64) {
		sc := store.Schedule{Name: "s", Flow: "f", Cron: expr, Every: time.Duration(every)}
		if err := validateSchedule("put schedule", &sc); err != nil {
			if baton.ErrorCode(err) != baton.Invalid {
				t.Fatalf("refused with %v, which is not coded invalid", err)
			}
			return
		}
		spec, err := parseSchedule(sc)
		if err != nil {
			t.Fatalf("%q (every %v) passed validation, but does not parse: %v", expr, time.Duration(every), err)
		}
		from := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		next := spec.next(from)
		if !next.After(from) {
			t.Fatalf("%q (every %v): the tick after %v is %v", expr, time.Duration(every), from, next)
		}
	})
}
