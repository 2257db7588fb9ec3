// Package yamldoc reads the documents users write definitions in (flows,
// expectations): YAML or JSON holding one definition, a list of them, or an
// object with the list under one key; and decodes a definition strictly.
package yamldoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	// sigs.k8s.io/yaml turns YAML into JSON, so that definitions decode
	// through the same json tags and UnmarshalJSON methods as in Go. It is
	// maintained by the Kubernetes SIG API Machinery and is what kubectl
	// and most of the Kubernetes ecosystem read YAML with.
	"sigs.k8s.io/yaml"
)

// Items returns the definitions b holds, each as JSON: b is one object, a
// list of them, or an object whose only key is list, holding a list. one
// names a definition in errors ("a flow"), list is their key and plural
// ("flows"). JSON is read as it is (YAML does not allow its tabs
// everywhere); YAML is read strictly: a key repeated is a mistake more
// often than not.
func Items(b []byte, one, list string) ([]json.RawMessage, error) {
	doc := bytes.TrimSpace(b)
	if !json.Valid(doc) {
		var err error
		if doc, err = yaml.YAMLToJSONStrict(b); err != nil {
			return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
		}
	}
	var items []json.RawMessage
	switch {
	case len(doc) == 0 || string(doc) == "null":
		return nil, errors.New("the document is empty")
	case doc[0] == '[':
		if err := json.Unmarshal(doc, &items); err != nil {
			return nil, err
		}
	case doc[0] == '{':
		var keys map[string]json.RawMessage
		var raw json.RawMessage
		ok := false
		if json.Unmarshal(doc, &keys) == nil {
			raw, ok = keys[list]
		}
		if !ok {
			items = []json.RawMessage{doc}
			break
		}
		for k := range keys {
			if k != list {
				return nil, fmt.Errorf("a list of %s: json: unknown field %q", list, k)
			}
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("a list of %s: %w", list, err)
		}
	default:
		return nil, fmt.Errorf("want %s, a list of them, or an object with a list %q", one, list)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("the document holds no %s", list)
	}
	return items, nil
}

// DecodeStrict decodes the JSON b into v, refusing a field v does not have.
func DecodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
