package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/yamldoc"
)

// Load reads flow definitions written in YAML or JSON (JSON is YAML): a
// document holding one flow, a list of flows, or {"flows": [...]}. Field
// names are those of the json tags ("fail_on", "on_failure"); durations
// are written "1.5s" or "10m". An unknown field, a bad value or a flow that
// does not Validate is an Invalid error naming the flow and where in it the
// problem is. Templates such as "{{input.id}}" must be quoted in YAML.
func Load(b []byte) ([]Flow, error) {
	flows, err := loadFlows(b)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "load flows", "%w", err)
	}
	return flows, nil
}

// LoadFile reads flow definitions from a YAML or JSON file; see Load.
func LoadFile(path string) ([]Flow, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		code := baton.Internal
		if errors.Is(err, fs.ErrNotExist) {
			code = baton.NotFound
		}
		return nil, baton.Errorf(code, "load flows", "%w", err)
	}
	flows, err := loadFlows(b)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "load flows from "+path, "%w", err)
	}
	return flows, nil
}

func loadFlows(b []byte) ([]Flow, error) {
	items, err := yamldoc.Items(b, "a flow", "flows")
	if err != nil {
		return nil, err
	}

	flows := make([]Flow, len(items))
	seen := map[string]int{}
	for i, item := range items {
		f := &flows[i]
		which := fmt.Sprintf("flow %d", i+1)
		if raw, ok := Lookup(item, "name"); ok {
			var name string
			if json.Unmarshal(raw, &name) == nil && name != "" {
				which += " (" + name + ")"
			}
		}
		var tree any
		if err := json.Unmarshal(item, &tree); err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		if _, ok := tree.(map[string]any); !ok {
			return nil, fmt.Errorf("%s: want an object with name, version and steps", which)
		}
		if err := checkFields(tree, reflect.TypeFor[Flow](), ""); err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		if err := yamldoc.DecodeStrict(item, f); err != nil {
			return nil, fmt.Errorf("%s: %w", which, err)
		}
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("flow %d: %w", i+1, err)
		}
		key := f.Name + " v" + strconv.Itoa(f.Version)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("flows %d and %d are both %s", j+1, i+1, key)
		}
		seen[key] = i
	}
	return flows, nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkFields walks the decoded document v against the type t it will be
// decoded into, and reports, with its path, the first key t has no field
// for and the first value a json.Unmarshaler (a Duration) refuses:
// encoding/json names neither where it is.
func checkFields(v any, t reflect.Type, at string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[Duration]() {
		// Duration reads a bare number as nanoseconds, which in a
		// hand-written definition is never what was meant.
		if n, ok := v.(float64); ok && n != 0 {
			return fmt.Errorf("%s: duration %v: write it with a unit, such as \"%vs\"", at, n, n)
		}
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		raw, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type mismatch, which the decoder reports
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fieldType(fields, k)
			if !ok {
				where := ""
				if at != "" {
					where = at + ": "
				}
				return fmt.Errorf("%sunknown field %q (want one of %s)", where, k, strings.Join(fieldNames(fields), ", "))
			}
			if err := checkFields(obj[k], ft, joinPath(at, k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range list {
			label := strconv.Itoa(i)
			if obj, ok := e.(map[string]any); ok {
				if name, ok := obj["name"].(string); ok && name != "" {
					label = name
				}
			}
			if err := checkFields(e, t.Elem(), at+"["+label+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			if err := checkFields(e, t.Elem(), joinPath(at, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the fields encoding/json decodes into t: exported, not
// "-", named by their tag or else by their Go name, embedded structs
// flattened.
func jsonFields(t reflect.Type) []jsonField {
	var fields []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				fields = append(fields, jsonFields(et)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, jsonField{name, f.Type})
	}
	return fields
}

// fieldType finds the field for key as encoding/json does: the exact name,
// else one that differs only in case.
func fieldType(fields []jsonField, key string) (reflect.Type, bool) {
	for _, f := range fields {
		if f.name == key {
			return f.typ, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f.typ, true
		}
	}
	return nil, false
}

func fieldNames(fields []jsonField) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}
