package expect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	// As flow.Load does: YAML is turned into JSON and decoded strictly.

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/yamldoc"
)

// doc is an expectation as written in YAML or JSON.
type doc struct {
	Name   string          `json:"name"`
	After  json.RawMessage `json:"after"`
	Want   json.RawMessage `json:"want"`
	Within json.RawMessage `json:"within"`
}

// Load reads expectations written in YAML or JSON (JSON is YAML): a
// document holding one, a list, or {"expectations": [...]}. Each has a
// name, after and want (one event type or a list) and within (a duration
// with its unit, such as "30s"):
//
//	name: inventory-answers
//	after: payment.processed.v1
//	want: [inventory.reserved.v1, inventory.failed.v1]
//	within: 30s
//
// A bad document is an Invalid error naming the expectation and the field.
func Load(b []byte) ([]Expectation, error) {
	xs, err := load(b)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "load expectations", "%w", err)
	}
	return xs, nil
}

// LoadFile reads expectations from a YAML or JSON file; see Load.
func LoadFile(path string) ([]Expectation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		code := baton.Internal
		if errors.Is(err, fs.ErrNotExist) {
			code = baton.NotFound
		}
		return nil, baton.Errorf(code, "load expectations", "%w", err)
	}
	xs, err := load(b)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "load expectations from "+path, "%w", err)
	}
	return xs, nil
}

func load(b []byte) ([]Expectation, error) {
	items, err := yamldoc.Items(b, "an expectation", "expectations")
	if err != nil {
		return nil, err
	}
	xs := make([]Expectation, len(items))
	seen := map[string]int{}
	for i, item := range items {
		x, err := decode(item)
		which := fmt.Sprintf("expectation %d", i+1)
		if x.Name != "" {
			which += " (" + x.Name + ")"
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		if err := x.Validate(); err != nil { // it names the expectation
			return nil, fmt.Errorf("expectation %d: %w", i+1, err)
		}
		if j, dup := seen[x.Name]; dup {
			return nil, fmt.Errorf("%s: the name is already that of expectation %d", which, j+1)
		}
		seen[x.Name] = i
		xs[i] = x
	}
	return xs, nil
}

// decode reads one expectation; what it could read of it comes back with
// an error, so that the error can name it.
func decode(item json.RawMessage) (Expectation, error) {
	var d doc
	if len(item) == 0 || item[0] != '{' {
		return Expectation{}, errors.New("want an object with name, after, want and within")
	}
	if err := yamldoc.DecodeStrict(item, &d); err != nil {
		json.Unmarshal(item, &d)
		return Expectation{Name: d.Name}, err
	}
	x := Expectation{Name: d.Name}
	var err error
	if x.After, err = types(d.After); err != nil {
		return x, fmt.Errorf("after: %w", err)
	}
	if x.Want, err = types(d.Want); err != nil {
		return x, fmt.Errorf("want: %w", err)
	}
	var within string
	switch {
	case len(d.Within) == 0 || string(d.Within) == "null":
		return x, errors.New("within: missing; give a duration such as 30s")
	case json.Unmarshal(d.Within, &within) != nil:
		return x, fmt.Errorf("within %s: write a duration with its unit, such as \"30s\"", d.Within)
	}
	if x.Within, err = time.ParseDuration(within); err != nil {
		return x, fmt.Errorf("within %q: want a duration with its unit, such as 30s or 1m30s", within)
	}
	return x, nil
}

// types reads one event type or a list of them.
func types(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("missing; give an event type or a list of them")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want an event type or a list of event types")
	}
	return list, nil
}
