package store_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
)

func TestAppendRunReadsBackAsEncodingJSONDoes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	for _, r := range []store.Run{
		{ID: "r-1", Flow: "order", Version: 1, Key: "o-1", Status: store.RunRunning, Created: at, Updated: at, Rev: 3},
		{
			ID: "r-\"2\"", Flow: "f\\low", Version: 7, Key: "k\n\t\x01é\xff", Status: store.RunFailed, Error: "step <a>: \"no\"",
			Created: at, Updated: at.Add(time.Second), Rev: 9, Wake: at.Add(time.Minute),
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "rojo=1",
			Input: json.RawMessage(`{"a":[1,2,{"b":null}]}`), Result: json.RawMessage(`"ok"`), Data: json.RawMessage(`{"steps":{"x":1}}`),
			Steps: map[string]*store.StepState{
				"charge":             {Status: store.StepCompleted, Attempts: 2, Started: at, Ended: at.Add(time.Millisecond)},
				"checks/1/fetch":     {Status: store.StepRunning, Attempts: 1, Error: "timed out", Started: at, Due: at.Add(time.Hour), Backoff: true},
				"pick":               {Status: store.StepRunning, Branch: 2},
				"on_failure/x\u2028": {Status: store.StepSkipped},
			},
		},
	} {
		var fast, slow store.Run
		if err := json.Unmarshal(store.AppendRun(nil, &r), &fast); err != nil {
			t.Fatalf("%s: AppendRun wrote invalid JSON: %v\n%s", r.ID, err, store.AppendRun(nil, &r))
		}
		std, _ := json.Marshal(r)
		if err := json.Unmarshal(std, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normal(fast), normal(slow)) {
			t.Errorf("%s: AppendRun reads back as\n%+v\nencoding/json as\n%+v", r.ID, fast, slow)
		}
	}
}

// AppendRun sizes its buffer once for a run as a coordinator saves it, with
// every member and step field set, escapes aside.
func TestAppendRunAllocatesOnce(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	r := store.Run{ID: "r-01M974SMJ946NA25NA7VZMQC6A", Flow: "order", Version: 1, Key: "o-000002", Status: store.RunCompensating,
		Error: "step charge: the service answered payment.declined.v1", Created: at, Updated: at, Rev: 12, Wake: at,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Input:       json.RawMessage(`{"order_id":"o-000002","amount_cents":2994}`), Result: json.RawMessage(`{"order_id":"o-000002"}`),
		Data:  json.RawMessage(`{"input":{"order_id":"o-000002","amount_cents":2994},"steps":{"charge":{"payment_id":"pay-o-000002"}}}`),
		Steps: map[string]*store.StepState{}}
	for _, path := range []string{"charge", "reserve", "checks/1/fetch", "charge/compensate/refund"} {
		r.Steps[path] = &store.StepState{Status: store.StepCompensated, Attempts: 10, Error: "no answer within 30s (after 10 attempts)",
			Started: at, Ended: at, Branch: 2, Due: at, Backoff: true}
	}
	if n := testing.AllocsPerRun(10, func() { store.AppendRun(nil, &r) }); n != 1 {
		t.Errorf("AppendRun allocated %v times, want once", n)
	}
}

// normal compacts the raw JSON so that both encodings compare.
func normal(r store.Run) store.Run {
	for _, raw := range []*json.RawMessage{&r.Input, &r.Result, &r.Data} {
		if len(*raw) > 0 {
			var v any
			json.Unmarshal(*raw, &v)
			*raw, _ = json.Marshal(v)
		}
	}
	return r
}

func BenchmarkAppendRun(b *testing.B) {
	at := time.Now()
	r := store.Run{ID: "r-01", Flow: "order", Version: 1, Key: "o-000001", Status: store.RunRunning, Created: at, Updated: at, Rev: 4,
		Input: json.RawMessage(`{"order_id":"o-000001","customer":"c-1","items":[{"sku":"a","qty":1}],"amount_cents":1200}`),
		Data:  json.RawMessage(`{"input":{"order_id":"o-000001"},"steps":{"charge":{"order_id":"o-000001","payment_id":"pay-o-000001"}}}`),
		Steps: map[string]*store.StepState{"charge": {Status: store.StepCompleted, Attempts: 1, Started: at, Ended: at}, "reserve": {Status: store.StepRunning, Attempts: 1, Started: at, Due: at}}}
	b.Run("AppendRun", func(b *testing.B) {
		for b.Loop() {
			store.AppendRun(nil, &r)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(r)
		}
	})
}
