package monitor

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// FlowName is the name of the monitoring flow.
const FlowName = "monitor"

// inputSchema is what a run's input must look like: the URL of the
// reading to fetch.
var inputSchema = json.RawMessage(`{
  "type": "object",
  "required": ["url"],
  "properties": {"url": {"type": "string", "pattern": "^https?://"}}
}`)

// Flow returns the "monitor" flow, version 1: fetch a reading from the URL
// in the run's input, store it, and alert when it is over threshold °C.
//
// The threshold is part of the definition (a condition compares with a
// value it holds), so changing it makes a new version of the flow; a run
// keeps the version it started on.
func Flow(threshold float64) flow.Flow {
	limit := strconv.FormatFloat(threshold, 'f', -1, 64)
	return flow.Flow{
		Name:        FlowName,
		Version:     1,
		InputSchema: inputSchema,
		Steps: []flow.Step{
			{
				// Retrieve: GET the reading, and keep the sensor's name and
				// the temperature in the run's variables for the check.
				Name: "fetch",
				HTTP: &flow.HTTPCall{
					URL: "{{input.url}}",
					Map: map[string]string{"sensor": "body.sensor", "celsius": "body.celsius"},
				},
				Timeout: flow.Duration(2 * time.Second),
				Retry:   &baton.RetryPolicy{MaxAttempts: 3, Base: 100 * time.Millisecond, Cap: time.Second},
			},
			{
				// Transform and store: the storage service converts,
				// flags and stores the reading the sensor answered.
				Name:    "store",
				Send:    &flow.Send{Type: TypeReadingReceived, Data: "steps.fetch.body"},
				Timeout: flow.Duration(5 * time.Second),
			},
			{
				// Check: over the threshold, alert through the notifier.
				Name: "check",
				Choice: []flow.Branch{{
					When: &flow.Condition{Path: "vars.celsius", Op: "gt", Value: threshold},
					Steps: []flow.Step{{
						Name:   "alert",
						Notify: &flow.Notify{Message: "{{vars.sensor}} at {{vars.celsius}} C, over the " + limit + " C threshold"},
					}},
				}},
			},
		},
	}
}

// Schedule returns the schedule that starts the flow for a sensor whose
// readings are at url: every interval, or, when cron is set, on that cron
// expression ("*/5 * * * *": every five minutes; "@every 30s" also works).
// A tick that comes while the previous run is still going is skipped.
func Schedule(name, url string, every time.Duration, cron string) store.Schedule {
	in, _ := json.Marshal(map[string]string{"url": url}) // a string map always encodes
	sc := store.Schedule{Name: name, Flow: FlowName, Input: in, Overlap: store.OverlapSkip}
	if cron != "" {
		sc.Cron = cron
	} else {
		sc.Every = every
	}
	return sc
}
