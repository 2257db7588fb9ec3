package event

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton"
)

// orders returns a registry with order.placed upcasters v1 -> v2 -> v3:
// v1 {"amount": 12.5} -> v2 {"cents": 1250} -> v3 {"total": {"cents": 1250, "currency": "EUR"}}.
func orders(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	must(t, r.Upcaster("order.placed.v1", "order.placed.v2", func(data json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			Amount float64 `json:"amount"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]int{"cents": int(v1.Amount*100 + 0.5)})
	}))
	must(t, r.Upcaster("order.placed.v2", "order.placed.v3", func(data json.RawMessage) (json.RawMessage, error) {
		var v2 struct {
			Cents int `json:"cents"`
		}
		if err := json.Unmarshal(data, &v2); err != nil {
			return nil, err
		}
		return json.RawMessage(fmt.Sprintf(`{"total":{"cents":%d,"currency":"EUR"}}`, v2.Cents)), nil
	}))
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func placed(version int, data string) baton.Event {
	e := sample()
	e.Type = fmt.Sprintf("order.placed.v%d", version)
	e.Data = json.RawMessage(data)
	return e
}

func TestPrepareChain(t *testing.T) {
	t.Parallel()
	r := orders(t)
	cases := []struct {
		in       baton.Event
		want     string
		wantData string
	}{
		{placed(1, `{"amount":12.5}`), "order.placed.v3", `{"total":{"cents":1250,"currency":"EUR"}}`},
		{placed(2, `{"cents":7}`), "order.placed.v3", `{"total":{"cents":7,"currency":"EUR"}}`},
		{placed(3, `{"total":{}}`), "order.placed.v3", `{"total":{}}`},
		{placed(1, `{"amount":1}`), "order.placed.v2", `{"cents":100}`},
		{placed(1, `{"amount":1}`), "order.placed.v1", `{"amount":1}`},
	}
	for _, c := range cases {
		got, err := r.Prepare(c.in, c.want)
		if err != nil {
			t.Errorf("Prepare(%s, %s): %v", c.in.Type, c.want, err)
			continue
		}
		want := c.in
		want.Type, want.Data = c.want, json.RawMessage(c.wantData)
		if c.in.Type != c.want {
			want.DataSchema = ""
		}
		sameEvent(t, got, want)
	}
}

func TestPrepareRefuses(t *testing.T) {
	t.Parallel()
	r := orders(t)
	partial := NewRegistry()
	must(t, partial.Upcaster("order.placed.v1", "order.placed.v2", func(d json.RawMessage) (json.RawMessage, error) { return d, nil }))
	cases := []struct {
		r    *Registry
		in   baton.Event
		want string
		msg  string
	}{
		{r, placed(9, `{}`), "order.placed.v3", `unsupported version 9 of "order.placed" (this handler takes v3; upcasters exist from v1, v2)`},
		{r, placed(3, `{}`), "order.placed.v2", `unsupported version 3 of "order.placed" (this handler takes v2; upcasters exist from v1)`},
		{r, placed(9, `{}`), "order.placed.v1", `unsupported version 9 of "order.placed" (this handler takes v1)`},
		{r, placed(1, `{}`), "order.placed.v4", `no upcaster from order.placed.v1 to order.placed.v4 (the chain stops at v3)`},
		{partial, placed(1, `{}`), "order.placed.v3", `no upcaster from order.placed.v1 to order.placed.v3 (the chain stops at v2)`},
		{partial, placed(2, `{}`), "order.placed.v3", `no upcaster from order.placed.v2 to order.placed.v3`},
		{NewRegistry(), placed(1, `{}`), "order.placed.v2", `no upcaster from order.placed.v1 to order.placed.v2`},
		{r, placed(1, `{}`), "order.shipped.v1", `unsupported type "order.placed.v1" (this handler takes "order.shipped.v1")`},
		{r, placed(1, `{}`), "order.placed", `handler type: bad event type "order.placed"`},
		{r, placed(1, `{"amount":"x"}`), "order.placed.v2", "upcast order.placed.v1"},
	}
	for _, c := range cases {
		_, err := c.r.Prepare(c.in, c.want)
		wantInvalid(t, err, c.msg)
	}
}

func TestPrepareNilRegistry(t *testing.T) {
	t.Parallel()
	var r *Registry
	e := placed(2, `{"cents":1}`)
	got, err := r.Prepare(e, "order.placed.v2")
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, got, e)
	_, err = r.Prepare(placed(1, `{}`), "order.placed.v2")
	wantInvalid(t, err, `unsupported version 1 of "order.placed" (this handler takes v2)`)
	if got := r.Sources("order.placed.v2"); got != nil {
		t.Errorf("nil registry: Sources = %v", got)
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	r := orders(t)
	for typ, want := range map[string][]string{
		"order.placed.v3":  {"order.placed.v1", "order.placed.v2"},
		"order.placed.v2":  {"order.placed.v1"},
		"order.placed.v1":  nil,
		"order.placed.v4":  nil,
		"order.shipped.v2": nil,
		"nonsense":         nil,
	} {
		if got := r.Sources(typ); !slices.Equal(got, want) {
			t.Errorf("Sources(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestUpcasterRegistration(t *testing.T) {
	t.Parallel()
	id := func(d json.RawMessage) (json.RawMessage, error) { return d, nil }
	r := NewRegistry()
	must(t, r.Upcaster("a.b.v1", "a.b.v2", id))
	cases := []struct{ from, to, want string }{
		{"a.b.v1", "a.b.v3", "from one version to the next of the same type, e.g. a.b.v1 -> a.b.v2"},
		{"a.b.v2", "a.b.v1", "from one version to the next"},
		{"a.b.v1", "a.c.v2", "from one version to the next"},
		{"a.b.v1", "a.b.v1", "from one version to the next"},
		{"a.b", "a.b.v2", "from: parse type"},
		{"a.b.v1", "A.b.v2", "to: parse type"},
		{"a.b.v1", "a.b.v2", "an upcaster from a.b.v1 is already registered"},
	}
	for _, c := range cases {
		wantInvalid(t, r.Upcaster(c.from, c.to, id), c.want)
	}
	wantInvalid(t, r.Upcaster("a.b.v2", "a.b.v3", nil), "nil function")
}

func TestUpcasterFailures(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	must(t, r.Upcaster("x.v1", "x.v2", func(json.RawMessage) (json.RawMessage, error) {
		return nil, baton.Errorf(baton.Unavailable, "lookup", "currency service down")
	}))
	must(t, r.Upcaster("y.v1", "y.v2", func(json.RawMessage) (json.RawMessage, error) { panic("boom") }))
	must(t, r.Upcaster("z.v1", "z.v2", func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`{`), nil }))
	e := sample()
	e.Type = "x.v1"
	_, err := r.Prepare(e, "x.v2")
	if baton.ErrorCode(err) != baton.Unavailable {
		t.Errorf("upcaster's own code is lost: %v (%s)", err, baton.ErrorCode(err))
	}
	e.Type = "y.v1"
	_, err = r.Prepare(e, "y.v2")
	if baton.ErrorCode(err) != baton.Internal || !errorContains(err, "upcaster panicked: boom") {
		t.Errorf("panicking upcaster: %v", err)
	}
	e.Type = "z.v1"
	_, err = r.Prepare(e, "z.v2")
	if baton.ErrorCode(err) != baton.Internal || !errorContains(err, "returned invalid JSON") {
		t.Errorf("upcaster returning invalid JSON: %v", err)
	}
}

func errorContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

const v3Schema = `{
	"type": "object",
	"required": ["total"],
	"properties": {
		"total": {
			"type": "object",
			"required": ["cents", "currency"],
			"properties": {
				"cents": {"type": "integer", "minimum": 0},
				"currency": {"enum": ["EUR", "USD"]}
			}
		},
		"placed": {"type": "string", "format": "date-time"}
	}
}`

func TestSchema(t *testing.T) {
	t.Parallel()
	r := orders(t)
	must(t, r.Schema("order.placed.v3", []byte(v3Schema)))

	// Upcast data is checked against the target type's schema.
	if _, err := r.Prepare(placed(1, `{"amount":3}`), "order.placed.v3"); err != nil {
		t.Errorf("valid upcast data: %v", err)
	}
	cases := []struct {
		in   baton.Event
		want []string
	}{
		{placed(1, `{"amount":-3}`), []string{"data of order.placed.v3", "does not match its schema", "at '/total/cents'", "minimum"}},
		{placed(3, `{"total":{"cents":1,"currency":"GBP"}}`), []string{"at '/total/currency'"}},
		{placed(3, `{}`), []string{"at the top level: missing property 'total'"}},
		{placed(3, `[]`), []string{"got array, want object"}},
		{placed(3, ``), []string{"got null, want object"}},
		{placed(3, `{"total":{"cents":1,"currency":"EUR"},"placed":"yesterday"}`), []string{"at '/placed'", "date-time"}},
	}
	for _, c := range cases {
		_, err := r.Prepare(c.in, "order.placed.v3")
		wantInvalid(t, err, c.want...)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("schema error spans lines: %q", err)
		}
	}
	// Other versions have no schema.
	if _, err := r.Prepare(placed(2, `"anything"`), "order.placed.v2"); err != nil {
		t.Errorf("no schema for v2: %v", err)
	}
}

func TestSchemaRegistration(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	must(t, r.Schema("a.v1", []byte(`true`)))
	cases := []struct {
		typ, schema string
		want        string
	}{
		{"a.v1", `{}`, "a schema for a.v1 is already registered"},
		{"a", `{}`, "parse type"},
		{"b.v1", `{"type":`, "schema of b.v1 is not JSON"},
		{"b.v1", `{"type": 5}`, "schema of b.v1 does not compile: not a valid JSON Schema: at '/type'"},
		{"b.v1", `{"minimum": "x"}`, "does not compile"},
		{"b.v1", `{"$ref": "file:///etc/passwd"}`, "does not compile"},
		{"b.v1", `{"$ref": "https://example.com/s.json"}`, "does not compile"},
		{"b.v1", `{"pattern": "("}`, "does not compile"},
	}
	for _, c := range cases {
		err := r.Schema(c.typ, []byte(c.schema))
		wantInvalid(t, err, c.want)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("compile error spans lines: %q", err)
		}
	}
	// Internal references work.
	must(t, r.Schema("c.v1", []byte(`{"$defs":{"id":{"type":"string"}},"properties":{"id":{"$ref":"#/$defs/id"}}}`)))
	e := sample()
	e.Type, e.Data = "c.v1", json.RawMessage(`{"id":5}`)
	_, err := r.Prepare(e, "c.v1")
	wantInvalid(t, err, "at '/id'", "want string")
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := orders(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := r.Prepare(placed(1, `{"amount":1}`), "order.placed.v3"); err != nil {
					t.Error(err)
					return
				}
				r.Sources("order.placed.v3")
			}
		}()
	}
	for i := 0; i < 50; i++ {
		must(t, r.Schema(fmt.Sprintf("other.v%d", i+1), []byte(`{"type":"object"}`)))
		must(t, r.Upcaster(fmt.Sprintf("other.v%d", i+1), fmt.Sprintf("other.v%d", i+2),
			func(d json.RawMessage) (json.RawMessage, error) { return d, nil }))
	}
	wg.Wait()
	if got := len(r.Sources("other.v51")); got != 50 {
		t.Errorf("Sources after concurrent registration: %d, want 50", got)
	}
}
