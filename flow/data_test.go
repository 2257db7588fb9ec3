package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/batonhq/baton"
)

const runData = `{
  "input": {"order_id": "ORDER-101", "amount": 42.5, "customer": {"name": "Zoë Ångström", "email": "zoe@example.com"},
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1, "tags": [["x", "y"], ["z"]]}]},
  "steps": {"charge": {"payment_id": "pay_1", "amount": 42.5, "ok": true, "note": null},
            "odd.name": 1, "esc\"aped": "quote", "caf\u00e9": "escaped key"},
  "last": {"type": "payment.processed.v1", "data": {"payment_id": "pay_1"}},
  "vars": {"temperature": 21, "city": "Zürich", "big": 9007199254740993, "list": [1, 2.0, "3"], "empty": {}, "none": []},
  "dup": 1, "dup": 2
}`

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want string // "" means not found
	}{
		{"input.order_id", `"ORDER-101"`},
		{"input.amount", `42.5`},
		{"input.customer.name", `"Zoë Ångström"`},
		{"input.customer", `{"name": "Zoë Ångström", "email": "zoe@example.com"}`},
		{"input.items.0.sku", `"A-1"`},
		{"input.items.1.qty", `1`},
		{"input.items.1.tags.0.1", `"y"`},
		{"input.items.1.tags.1", `["z"]`},
		{"input.items.2", ""},
		{"input.items.-1", ""},
		{"input.items.x", ""},
		{"input.items.01", `{"sku": "B-2", "qty": 1, "tags": [["x", "y"], ["z"]]}`},
		{"steps.charge", `{"payment_id": "pay_1", "amount": 42.5, "ok": true, "note": null}`},
		{"steps.charge.payment_id", `"pay_1"`},
		{"steps.charge.ok", `true`},
		{"steps.charge.note", `null`},
		{"steps.charge.missing", ""},
		{"steps.café", `"escaped key"`},
		{`steps.esc"aped`, `"quote"`},
		{"steps.odd", ""}, // dots always separate segments
		{"last.type", `"payment.processed.v1"`},
		{"last.data.payment_id", `"pay_1"`},
		{"vars.temperature", `21`},
		{"vars.city", `"Zürich"`},
		{"vars.big", `9007199254740993`},
		{"vars.empty", `{}`},
		{"vars.none", `[]`},
		{"vars.none.0", ""},
		{"vars.temperature.x", ""}, // into a number
		{"vars.city.0", ""},        // into a string
		{"dup", `2`},               // the last of duplicate keys, as encoding/json
		{"nothing", ""},
		{"input.", ""},
		{".input", ""},
		{"input..order_id", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := Lookup(json.RawMessage(runData), tt.path)
			if tt.want == "" {
				if ok {
					t.Fatalf("Lookup(%q) = %s, want not found", tt.path, got)
				}
				return
			}
			if !ok || string(got) != tt.want {
				t.Fatalf("Lookup(%q) = %s, %v; want %s", tt.path, got, ok, tt.want)
			}
		})
	}
}

func TestLookupWholeAndOdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		doc, path, want string
		ok              bool
	}{
		{` {"a": 1} `, "", `{"a": 1}`, true},
		{`null`, "", `null`, true},
		{`"str"`, "", `"str"`, true},
		{``, "", ``, false},
		{``, "a", ``, false},
		{`null`, "a", ``, false},
		{`[10, [20, 30]]`, "1.1", `30`, true},
		{"{\"a\":\n\t[ 1 ,\n 2 ] }", "a.1", `2`, true},
		{`{"a": "}]{[\"", "b": 3}`, "b", `3`, true}, // brackets and quotes inside strings
		{`{"a": {"b": 1`, "a.b", ``, false},         // truncated
		{`{"a" 1}`, "a", ``, false},
		{`{"a": 1, "b": }`, "a", ``, false},
		{`[1, 2`, "2", ``, false},
		{`{"a": "unterminated}`, "a", ``, false},
	}
	for _, tt := range tests {
		got, ok := Lookup(json.RawMessage(tt.doc), tt.path)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("Lookup(%q, %q) = %q, %v; want %q, %v", tt.doc, tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLookupResultCannotOverwriteData(t *testing.T) {
	t.Parallel()
	doc := json.RawMessage(`{"a":"x","b":"y"}`)
	v, _ := Lookup(doc, "a")
	_ = append(v, 'Z')
	if string(doc) != `{"a":"x","b":"y"}` {
		t.Fatalf("appending to a looked-up value changed the document: %s", doc)
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl, want string
	}{
		{"no templates here", "no templates here"},
		{"", ""},
		{`{"literal": {"json": true}}`, `{"literal": {"json": true}}`},
		{"https://api.example.com/orders/{{input.order_id}}", "https://api.example.com/orders/ORDER-101"},
		{"{{ input.order_id }}|{{input.amount}}|{{  vars.temperature}}", "ORDER-101|42.5|21"},
		{"Hello {{input.customer.name}} in {{vars.city}}", "Hello Zoë Ångström in Zürich"},
		{"customer={{input.customer}}", `customer={"name":"Zoë Ångström","email":"zoe@example.com"}`},
		{"tags={{input.items.1.tags}}", `tags=[["x","y"],["z"]]`},
		{"{{steps.charge.ok}} {{steps.charge.note}}", "true null"},
		{"{{steps.esc\"aped}}", "quote"},
		{"{{last.type}}", "payment.processed.v1"},
		{`{"amount": {{input.amount}}, "id": "{{input.order_id}}"}`, `{"amount": 42.5, "id": "ORDER-101"}`},
		{"unclosed {{input.order_id", "unclosed {{input.order_id"},
		{"{{vars.big}}", "9007199254740993"},
	}
	for _, tt := range tests {
		got, err := Render(tt.tmpl, json.RawMessage(runData))
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.tmpl, got, err, tt.want)
		}
	}

	escaped := json.RawMessage(`{"s": "line\nnext \"quoted\" \u00e9"}`)
	if got, err := Render("[{{s}}]", escaped); err != nil || got != "[line\nnext \"quoted\" é]" {
		t.Errorf("Render of an escaped string = %q, %v", got, err)
	}
}

func TestRenderUnknownPath(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{"{{input.nope}}", "ok {{input.order_id}} then {{ steps.refund.id }}"} {
		_, err := Render(tmpl, json.RawMessage(runData))
		if baton.ErrorCode(err) != baton.Invalid {
			t.Fatalf("Render(%q) error = %v, want an invalid error", tmpl, err)
		}
		name := strings.TrimSpace(tmpl[strings.LastIndex(tmpl, "{{")+2 : strings.LastIndex(tmpl, "}}")])
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Render(%q) error %q does not name %s", tmpl, err, name)
		}
	}
}

func TestConditionHolds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, op string
		value    any
		want     bool
	}{
		{"input.order_id", "eq", "ORDER-101", true},
		{"input.order_id", "eq", "ORDER-102", false},
		{"input.order_id", "ne", "ORDER-102", true},
		{"vars.city", "eq", "Zürich", true},
		{"input.amount", "eq", 42.5, true},
		{"vars.temperature", "eq", 21, true},
		{"vars.temperature", "eq", 21.0, true}, // 21 == 21.0
		{"vars.temperature", "eq", json.Number("2.1e1"), true},
		{"vars.temperature", "eq", "21", false}, // a string is not a number
		{"vars.big", "eq", json.Number("9007199254740993"), true},
		{"vars.big", "eq", json.Number("9007199254740992"), false}, // integers compare exactly
		{"vars.big", "gt", json.Number("9007199254740992"), true},
		{"steps.charge.ok", "eq", true, true},
		{"steps.charge.ok", "ne", false, true},
		{"steps.charge.note", "eq", nil, true},
		{"vars.list", "eq", []any{1, 2, "3"}, true}, // 2.0 == 2 inside lists
		{"vars.list", "eq", []int{1, 2, 3}, false},
		{"input.customer", "eq", map[string]any{"email": "zoe@example.com", "name": "Zoë Ångström"}, true},
		{"input.customer", "eq", map[string]string{"name": "Zoë Ångström"}, false},
		{"input.items.0", "eq", struct {
			SKU string `json:"sku"`
			Qty int    `json:"qty"`
		}{"A-1", 2}, true},
		{"vars.temperature", "gt", 20, true},
		{"vars.temperature", "gt", 21, false},
		{"vars.temperature", "gte", 21, true},
		{"vars.temperature", "lt", 21.5, true},
		{"vars.temperature", "lte", 20.99, false},
		{"input.amount", "lte", 42.5, true},
		{"input.amount", "gt", -1e300, true},
		{"vars.temperature", "in", []any{19, 20, 21}, true},
		{"vars.temperature", "in", []float64{21.0}, true},
		{"vars.city", "in", []string{"Bern", "Zürich"}, true},
		{"vars.city", "in", []string{}, false},
		{"input.items.1.tags.1", "in", []any{[]any{"z"}}, true},
		{"steps.charge.payment_id", "exists", nil, true},
		{"steps.charge.note", "exists", nil, false}, // null
		{"steps.charge", "exists", nil, true},
		{"vars.empty", "exists", nil, true},
		// A missing path holds for ne only.
		{"steps.refund.id", "eq", "x", false},
		{"steps.refund.id", "ne", "x", true},
		{"steps.refund.id", "gt", 1, false},
		{"steps.refund.id", "lte", 1, false},
		{"steps.refund.id", "in", []string{"x"}, false},
		{"steps.refund.id", "exists", nil, false},
		{"input.items.9", "eq", nil, false},
	}
	for _, tt := range tests {
		c := Condition{Path: tt.path, Op: tt.op, Value: tt.value}
		got, err := c.Holds(json.RawMessage(runData))
		if err != nil || got != tt.want {
			t.Errorf("%s %s %v = %v, %v; want %v", tt.path, tt.op, tt.value, got, err, tt.want)
		}
	}
}

func TestConditionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path, op string
		value    any
		says     string
	}{
		{"vars.city", "gt", 3, "not a number"},
		{"steps.charge.ok", "lt", 3, "not a number"},
		{"steps.charge.note", "gte", 3, "not a number"},
		{"vars.temperature", "gt", "20", "not a number"},
		{"steps.refund.id", "gt", "20", "not a number"}, // a bad definition, even on a missing path
		{"vars.temperature", "in", 21, "not a list"},
		{"vars.temperature", "like", 21, `op "like"`},
		{"vars.temperature", "", 21, `op ""`},
		{"vars.temperature", "eq", func() {}, "value"},
	}
	for _, tt := range tests {
		c := Condition{Path: tt.path, Op: tt.op, Value: tt.value}
		got, err := c.Holds(json.RawMessage(runData))
		if baton.ErrorCode(err) != baton.Invalid || got {
			t.Errorf("%s %s %v = %v, %v; want an invalid error", tt.path, tt.op, tt.value, got, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s %s %v: error %q should name the path and say %q", tt.path, tt.op, tt.value, err, tt.says)
		}
	}
}

// A condition loaded from JSON carries float64 and []any values.
func TestConditionFromJSON(t *testing.T) {
	t.Parallel()
	var c Condition
	if err := json.Unmarshal([]byte(`{"path": "vars.temperature", "op": "in", "value": [20, 21.0]}`), &c); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Holds(json.RawMessage(runData)); err != nil || !ok {
		t.Fatalf("Holds = %v, %v; want true", ok, err)
	}
}

func TestSetPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data, path, value, want string
	}{
		{``, "input", `{"a":1}`, `{"input":{"a":1}}`},
		{`null`, "vars.x", `1`, `{"vars":{"x":1}}`},
		{`{}`, "steps.charge", `{"id":"p"}`, `{"steps":{"charge":{"id":"p"}}}`},
		{`{"input":{}}`, "steps.charge", `{"id":"p"}`, `{"input":{},"steps":{"charge":{"id":"p"}}}`},
		{`{"steps":{"charge":{"id":"p"}}}`, "steps.reserve", `true`, `{"steps":{"charge":{"id":"p"},"reserve":true}}`},
		{`{"steps":{"charge":{"id":"p"}}}`, "steps.charge", `{"id":"q"}`, `{"steps":{"charge":{"id":"q"}}}`},
		{`{"last":{"type":"a.b.v1","data":{}}}`, "last", `{"type":"c.d.v1"}`, `{"last":{"type":"c.d.v1"}}`},
		{`{"vars":null}`, "vars.t", `21`, `{"vars":{"t":21}}`},
		{`{"vars": { } }`, "vars.t", `21`, `{"vars": { "t":21} }`},
		{"{\n \"a\" : 1\n}", "b", `2`, "{\n \"a\" : 1\n,\"b\":2}"},
		{`{"a":1}`, "a", ``, `{"a":null}`},
		{`{"a":1}`, "a", ` [1, 2] `, `{"a":[1, 2]}`},
		{`{}`, "vars.Zürich", `"ß"`, `{"vars":{"Zürich":"ß"}}`},
		{`{}`, `vars.q"t`, `1`, `{"vars":{"q\"t":1}}`},
		{`{"vars":{"caf\u00e9":1}}`, "vars.café", `2`, `{"vars":{"caf\u00e9":2}}`},
		{`{"a":1,"a":2}`, "a", `3`, `{"a":1,"a":3}`}, // the one Lookup reads
		{`{"a":{"b":{"c":1}}}`, "a.b.d.e", `"x"`, `{"a":{"b":{"c":1,"d":{"e":"x"}}}}`},
	}
	for _, tt := range tests {
		orig := tt.data
		data := json.RawMessage(tt.data)
		got, err := SetPath(data, tt.path, json.RawMessage(tt.value))
		if err != nil || string(got) != tt.want {
			t.Errorf("SetPath(%s, %q, %s) = %s, %v; want %s", tt.data, tt.path, tt.value, got, err, tt.want)
			continue
		}
		if string(data) != orig {
			t.Errorf("SetPath modified its input: %s", data)
		}
		if !json.Valid(got) {
			t.Errorf("SetPath(%s, %q) made invalid JSON: %s", tt.data, tt.path, got)
		}
		if v, ok := Lookup(got, tt.path); !ok || (tt.value != "" && !bytes.Equal(v, bytes.TrimSpace([]byte(tt.value)))) {
			t.Errorf("after SetPath(%q), Lookup = %s, %v", tt.path, v, ok)
		}
	}
}

func TestSetPathErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data, path, value, says string
	}{
		{`{}`, "", `1`, "empty path"},
		{`{}`, "a..b", `1`, "empty segment"},
		{`{}`, "a.", `1`, "empty segment"},
		{`{}`, "a", `{not json`, "not JSON"},
		{`[1]`, "a", `1`, "not an object"},
		{`{"vars":"text"}`, "vars.x", `1`, "vars is a string, not an object"},
		{`{"vars":{"x":[1]}}`, "vars.x.y", `1`, "vars.x is a list, not an object"},
		{`{"a": 1`, "b", `1`, "not JSON"},
	}
	for _, tt := range tests {
		_, err := SetPath(json.RawMessage(tt.data), tt.path, json.RawMessage(tt.value))
		if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("SetPath(%s, %q, %s) error = %v; want an invalid error saying %q", tt.data, tt.path, tt.value, err, tt.says)
		}
	}
}

// benchData is a run of the order flow a few steps in: about 3 KB.
func benchData() json.RawMessage {
	items := make([]string, 20)
	for i := range items {
		items[i] = fmt.Sprintf(`{"sku": "SKU-%d", "qty": %d, "price": %d.99, "title": "Item number %d with a longer title"}`, i, i%3+1, i*3, i)
	}
	return json.RawMessage(`{"input": {"order_id": "ORDER-101", "customer": {"name": "Zoë", "email": "zoe@example.com"}, "items": [` +
		strings.Join(items, ", ") + `]}, "steps": {"charge": {"payment_id": "pay_123", "amount": 125.5}, "reserve": {"reservation": "res_9", "items": 20}},` +
		` "last": {"type": "inventory.reserved.v1", "data": {"reservation": "res_9"}}, "vars": {"temperature": 21.5, "token": "abc"}}`)
}

func BenchmarkLookup(b *testing.B) {
	data := benchData()
	for _, path := range []string{"input", "steps.charge.payment_id", "vars.temperature", "input.items.19.sku"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := Lookup(data, path); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
	// For comparison: decoding the document to find one value.
	b.Run("decode-map/steps.charge.payment_id", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
			_ = m["steps"].(map[string]any)["charge"].(map[string]any)["payment_id"]
		}
	})
}

func BenchmarkRender(b *testing.B) {
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(`{"order": "{{input.order_id}}", "payment": "{{ steps.charge.payment_id }}", "amount": {{steps.charge.amount}}}`, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHolds(b *testing.B) {
	data := benchData()
	c := Condition{Path: "vars.temperature", Op: "gt", Value: 20}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := c.Holds(data); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkSetPath(b *testing.B) {
	data := benchData()
	value := json.RawMessage(`{"notification_id": "n_1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SetPath(data, "steps.notify", value); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzLookup checks Lookup against encoding/json on valid documents, and
// that it never panics on any input.
func FuzzLookup(f *testing.F) {
	f.Add(runData, "input.items.1.tags.0")
	f.Add(`{"a":[{"b":null}],"a":{"c":"\u00e9"}}`, "a.c")
	f.Add(`[[],[1,{"x":"]"}]]`, "1.1.x")
	f.Add(`{"é":{"0":[true]}}`, "é.0.0")
	f.Fuzz(func(t *testing.T, doc, path string) {
		got, ok := Lookup(json.RawMessage(doc), path)
		// encoding/json turns invalid UTF-8 into U+FFFD; Lookup compares
		// keys byte for byte. Run data written by encoding/json is valid.
		if !json.Valid([]byte(doc)) || !utf8.ValidString(doc) {
			return
		}
		want, wantOK := walkDecoded(t, doc, path)
		if ok != wantOK {
			t.Fatalf("Lookup(%q, %q) found %v (%s), encoding/json found %v", doc, path, ok, got, wantOK)
		}
		if ok {
			v, err := decodeValue(got)
			if err != nil || !jsonEqual(v, want) {
				t.Fatalf("Lookup(%q, %q) = %s, encoding/json has %v", doc, path, got, want)
			}
		}
	})
}

func walkDecoded(t *testing.T, doc, path string) (any, bool) {
	v, err := decodeValue([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if path == "" {
		return v, true
	}
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok || seg == "" {
				return nil, false
			}
		case []any:
			n := 0
			if seg == "" || len(seg) > 9 {
				return nil, false
			}
			for _, c := range seg {
				if c < '0' || c > '9' {
					return nil, false
				}
				n = n*10 + int(c-'0')
			}
			if n >= len(x) {
				return nil, false
			}
			v = x[n]
		default:
			return nil, false
		}
	}
	return v, true
}
