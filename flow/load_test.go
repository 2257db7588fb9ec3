package flow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

const orderFlowYAML = `
# The order flow, for teams that do not write Go.
name: orders
version: 2
input_schema:
  type: object
  required: [order_id, amount]
steps:
  - name: charge
    send:
      type: payment.requested.v1
      fail_on: [payment.failed.v1]
    timeout: 20s
    compensate:
      name: refund
      send: {type: $last, data: last}
  - name: checks
    parallel:
      join: first
      branches:
        - - name: fraud_fast
            send: {type: fraud.check.v1, data: steps.charge}
        - - name: fraud_slow
            send: {type: fraud.deep_check.v1, data: steps.charge.payment_id}
          - name: fraud_note
            notify: {message: "slow fraud check for {{input.order_id}}"}
  - name: reserve
    send:
      type: inventory.requested.v1
      fail_on: [inventory.failed.v1, inventory.unknown_sku.v1]
  - name: route
    choice:
      - when: {path: input.amount, op: gt, value: 100}
        steps:
          - name: review
            wait: {type: review.approved.v1}
            timeout: 10m
      - when: {path: input.country, op: in, value: [CH, LI]}
        steps:
          - name: customs
            fail: "no customs yet"
      - steps:
          - name: settle
            sleep: 1.5s
  - name: weather
    http:
      method: GET
      url: "https://weather.example.com/v1/{{input.city}}"
      session: carrier
      headers:
        Authorization: "Bearer {{vars.token}}"
      map:
        temperature: body.temperature
        code: status
    timeout: 5s
  - name: notify
    send:
      type: notification.requested.v1
      fail_on: [notification.failed.v1]
  - name: complete
    send: {type: order.complete.v1, data: steps.reserve}
on_failure:
  - name: tell_customer
    send: {type: order.cancelled.v1}
`

func orderFlowGo() Flow {
	return Flow{
		Name:        "orders",
		Version:     2,
		InputSchema: json.RawMessage(`{"type":"object","required":["order_id","amount"]}`),
		Steps: []Step{
			{
				Name:       "charge",
				Send:       &Send{Type: "payment.requested.v1", FailOn: []string{"payment.failed.v1"}},
				Timeout:    Duration(20 * time.Second),
				Compensate: &Step{Name: "refund", Send: &Send{Type: "$last", Data: "last"}},
			},
			{Name: "checks", Parallel: &Parallel{Join: "first", Branches: [][]Step{
				{{Name: "fraud_fast", Send: &Send{Type: "fraud.check.v1", Data: "steps.charge"}}},
				{
					{Name: "fraud_slow", Send: &Send{Type: "fraud.deep_check.v1", Data: "steps.charge.payment_id"}},
					{Name: "fraud_note", Notify: &Notify{Message: "slow fraud check for {{input.order_id}}"}},
				},
			}}},
			{Name: "reserve", Send: &Send{Type: "inventory.requested.v1", FailOn: []string{"inventory.failed.v1", "inventory.unknown_sku.v1"}}},
			{Name: "route", Choice: []Branch{
				{When: &Condition{Path: "input.amount", Op: "gt", Value: 100.0}, Steps: []Step{
					{Name: "review", Wait: &Wait{Type: "review.approved.v1"}, Timeout: Duration(10 * time.Minute)},
				}},
				{When: &Condition{Path: "input.country", Op: "in", Value: []any{"CH", "LI"}}, Steps: []Step{
					{Name: "customs", Fail: "no customs yet"},
				}},
				{Steps: []Step{{Name: "settle", Sleep: Duration(1500 * time.Millisecond)}}},
			}},
			{Name: "weather", HTTP: &HTTPCall{
				Method:  "GET",
				URL:     "https://weather.example.com/v1/{{input.city}}",
				Session: "carrier",
				Headers: map[string]string{"Authorization": "Bearer {{vars.token}}"},
				Map:     map[string]string{"temperature": "body.temperature", "code": "status"},
			}, Timeout: Duration(5 * time.Second)},
			{Name: "notify", Send: &Send{Type: "notification.requested.v1", FailOn: []string{"notification.failed.v1"}}},
			{Name: "complete", Send: &Send{Type: "order.complete.v1", Data: "steps.reserve"}},
		},
		OnFailure: []Step{{Name: "tell_customer", Send: &Send{Type: "order.cancelled.v1"}}},
	}
}

// sameFlow compares flows, the input schemas as JSON values.
func sameFlow(t *testing.T, got, want Flow) {
	t.Helper()
	var gs, ws any
	if err := json.Unmarshal(got.InputSchema, &gs); err != nil && got.InputSchema != nil {
		t.Fatalf("input schema %s: %v", got.InputSchema, err)
	}
	json.Unmarshal(want.InputSchema, &ws)
	if !reflect.DeepEqual(gs, ws) {
		t.Errorf("input schema = %s, want %s", got.InputSchema, want.InputSchema)
	}
	got.InputSchema, want.InputSchema = nil, nil
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("loaded flow differs from the one built in Go:\n got %s\nwant %s", g, w)
	}
}

func TestLoadOrderFlowYAML(t *testing.T) {
	t.Parallel()
	want := orderFlowGo()
	if err := want.Validate(); err != nil {
		t.Fatalf("the Go flow does not validate: %v", err)
	}
	flows, err := Load([]byte(orderFlowYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 {
		t.Fatalf("loaded %d flows, want 1", len(flows))
	}
	sameFlow(t, flows[0], want)

	// What the Go flow marshals to loads back as the same flow.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(b)
	if err != nil {
		t.Fatalf("loading %s: %v", b, err)
	}
	sameFlow(t, again[0], want)
}

func TestLoadJSONList(t *testing.T) {
	t.Parallel()
	// Tabs, which YAML does not allow for indentation, are fine in JSON.
	doc := "[\n\t{\"name\": \"orders\", \"version\": 1, \"steps\": [{\"name\": \"charge\", \"send\": {\"type\": \"payment.requested.v1\"}}]},\n" +
		"\t{\"name\": \"orders\", \"version\": 2, \"steps\": [{\"name\": \"nap\", \"sleep\": \"250ms\"}, {\"name\": \"charge\", \"send\": {\"type\": \"payment.requested.v2\", \"fail_on\": [\"payment.failed.v1\"]}}]}\n]"
	flows, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []Flow{
		{Name: "orders", Version: 1, Steps: []Step{{Name: "charge", Send: &Send{Type: "payment.requested.v1"}}}},
		{Name: "orders", Version: 2, Steps: []Step{
			{Name: "nap", Sleep: Duration(250 * time.Millisecond)},
			{Name: "charge", Send: &Send{Type: "payment.requested.v2", FailOn: []string{"payment.failed.v1"}}},
		}},
	}
	if !reflect.DeepEqual(flows, want) {
		t.Errorf("Load = %+v\nwant %+v", flows, want)
	}
}

func TestLoadFlowsKey(t *testing.T) {
	t.Parallel()
	doc := `
flows:
  - name: hello
    version: 1
    steps: [{name: greet, notify: {message: hi}}]
  - name: bye
    version: 3
    steps: [{name: wave, fail: "goodbye"}]
`
	flows, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 2 || flows[0].Name != "hello" || flows[1].Version != 3 || flows[1].Steps[0].Fail != "goodbye" {
		t.Errorf("Load = %+v", flows)
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "orders.yaml")
	if err := os.WriteFile(good, []byte(orderFlowYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	flows, err := LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	sameFlow(t, flows[0], orderFlowGo())

	bad := filepath.Join(dir, "broken.yml")
	os.WriteFile(bad, []byte("name: x\nversion: 1\nsteps:\n  - name: a\n    sleep: 5 minutes\n"), 0o600)
	_, err = LoadFile(bad)
	if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "5 minutes") {
		t.Errorf("LoadFile of a bad file: %v; want an invalid error naming the file and the value", err)
	}

	_, err = LoadFile(filepath.Join(dir, "missing.yaml"))
	if baton.ErrorCode(err) != baton.NotFound || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("LoadFile of a missing file: %v; want a not_found error naming it", err)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	const head = "name: orders\nversion: 1\nsteps:\n"
	tests := []struct {
		name, doc string
		says      []string
	}{
		{"unknown field in a step", head + "  - name: charge\n    send: {type: payment.requested.v1, fail_onn: [payment.failed.v1]}\n",
			[]string{"flow 1 (orders)", "steps[charge].send", `unknown field "fail_onn"`, "fail_on"}},
		{"unknown top-level field", head + "  - name: charge\n    send: {type: payment.requested.v1}\nretries: 3\n",
			[]string{"flow 1 (orders)", `unknown field "retries"`}},
		{"unknown field deep in a branch", head + "  - name: p\n    parallel:\n      branches:\n        - - name: a\n            http: {url: 'http://x', header: {A: b}}\n",
			[]string{"steps[p].parallel.branches[0][a].http", `unknown field "header"`}},
		{"unknown field in a condition", head + "  - name: c\n    choice:\n      - when: {path: input.x, op: eq, val: 1}\n        steps: [{name: s, sleep: 1s}]\n",
			[]string{"steps[c].choice[0].when", `unknown field "val"`}},
		{"unknown field beside flows", "flows: []\nname: x\n", []string{`unknown field "name"`}},
		{"bad duration", head + "  - name: nap\n    sleep: 1.5 s\n", []string{"flow 1 (orders)", "steps[nap].sleep", `"1.5 s"`}},
		{"bad timeout", head + "  - name: w\n    wait: {type: a.b.v1}\n    timeout: 10 minutes\n", []string{"steps[w].timeout", "10 minutes"}},
		{"duration without a unit", head + "  - name: nap\n    sleep: 30\n", []string{"steps[nap].sleep", "with a unit", `"30s"`}},
		{"duplicate step names", head + "  - name: charge\n    send: {type: payment.requested.v1}\n  - name: charge\n    sleep: 1s\n",
			[]string{"flow 1", "orders v1", `"charge" is used twice`}},
		{"invalid step", head + "  - name: charge\n    send: {type: Payment.Requested}\n", []string{"orders v1", "step charge", "Payment.Requested"}},
		{"no kind", head + "  - name: charge\n", []string{"step charge", "set exactly one"}},
		{"wrong type", head + "  - name: charge\n    send: {type: [a]}\n", []string{"flow 1 (orders)", "string"}},
		{"second flow of a list", `[{"name": "a", "version": 1, "steps": [{"name": "s", "sleep": "1s"}]}, {"name": "b", "version": 0, "steps": []}]`,
			[]string{"flow 2", "version 0"}},
		{"the same flow twice", `[{"name": "a", "version": 1, "steps": [{"name": "s", "sleep": "1s"}]}, {"name": "a", "version": 1, "steps": [{"name": "t", "sleep": "1s"}]}]`,
			[]string{"flows 1 and 2", "a v1"}},
		{"duplicate YAML key", head + "  - name: a\n    name: b\n    sleep: 1s\n", []string{"not valid YAML", "line 5", `"name" already set`}},
		{"not YAML", "name: [unclosed\n", []string{"not valid YAML or JSON", "line 1"}},
		{"empty", "   \n", []string{"empty"}},
		{"only a comment", "# nothing\n", []string{"empty"}},
		{"a scalar", "hello\n", []string{"want a flow"}},
		{"an empty list", "[]", []string{"no flows"}},
		{"a list of scalars", "[1, 2]", []string{"flow 1", "want an object"}},
		{"a reserved name", "name: expect:late\nversion: 1\nsteps: [{name: s, sleep: 1s}]\n", []string{`"expect:late"`, "reserved for the runs of expectations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flows, err := Load([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Load = %+v, want an error", flows)
			}
			if baton.ErrorCode(err) != baton.Invalid {
				t.Errorf("code %s, want invalid: %v", baton.ErrorCode(err), err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
