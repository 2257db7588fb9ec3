package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/jsonx"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// upcaster rewrites the data of one version of an event type into the shape
// of the next version.
type upcaster func(data json.RawMessage) (json.RawMessage, error)

// Registry holds the upcasters and schemas of event types. Registration is
// meant for set-up; Prepare, Sources and every other method are safe to call
// from any goroutine at any time, and Prepare takes no lock.
type Registry struct {
	mu    sync.Mutex // serialises writers
	state atomic.Pointer[registryState]
}

// registryState is never modified once published: writers copy it.
type registryState struct {
	up      map[step]upcaster // keyed by the version it reads
	schemas map[string]*jsonschema.Schema
}

type step struct {
	name    string
	version int
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{}
	r.state.Store(&registryState{up: map[step]upcaster{}, schemas: map[string]*jsonschema.Schema{}})
	return r
}

func (r *Registry) load() *registryState {
	if r == nil {
		return nil
	}
	return r.state.Load()
}

// update applies fn to a copy of the state and publishes it if fn succeeds.
func (r *Registry) update(fn func(s *registryState) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.state.Load()
	s := &registryState{up: maps.Clone(old.up), schemas: maps.Clone(old.schemas)}
	if err := fn(s); err != nil {
		return err
	}
	r.state.Store(s)
	return nil
}

// Upcaster registers fn to turn data of type from into data of type to, the
// next version of the same name: "order.placed.v1" to "order.placed.v2".
// Each version has at most one upcaster.
func (r *Registry) Upcaster(from, to string, fn func(data json.RawMessage) (json.RawMessage, error)) error {
	const op = "register upcaster"
	fromName, fromV, err := ParseType(from)
	if err != nil {
		return baton.Errorf(baton.Invalid, op, "from: %w", err)
	}
	toName, toV, err := ParseType(to)
	if err != nil {
		return baton.Errorf(baton.Invalid, op, "to: %w", err)
	}
	if fromName != toName || toV != fromV+1 {
		return baton.Errorf(baton.Invalid, op,
			"%s -> %s: an upcaster goes from one version to the next of the same type, e.g. %s -> %s",
			from, to, from, typeString(fromName, fromV+1))
	}
	if fn == nil {
		return baton.Errorf(baton.Invalid, op, "%s -> %s: nil function", from, to)
	}
	return r.update(func(s *registryState) error {
		k := step{fromName, fromV}
		if _, dup := s.up[k]; dup {
			return baton.Errorf(baton.Invalid, op, "%s -> %s: an upcaster from %s is already registered", from, to, from)
		}
		s.up[k] = fn
		return nil
	})
}

// Schema registers a JSON Schema that the data of events of type typ (exact
// name and version) must match after Prepare. A schema without "$schema" is
// read as draft 2020-12; "format" is asserted, not just annotated. A schema
// may not refer to other documents: no file or network access happens.
func (r *Registry) Schema(typ string, schema []byte) error {
	const op = "register schema"
	if _, _, err := ParseType(typ); err != nil {
		return baton.Errorf(baton.Invalid, op, "%w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return baton.Errorf(baton.Invalid, op, "schema of %s is not JSON: %v", typ, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	loc := "urn:baton:schema:" + typ
	if err := c.AddResource(loc, doc); err != nil {
		return baton.Errorf(baton.Invalid, op, "schema of %s: %v", typ, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		detail := oneLine(err.Error())
		var se *jsonschema.SchemaValidationError
		var ve *jsonschema.ValidationError
		if errors.As(err, &se) && errors.As(se.Err, &ve) {
			detail = "not a valid JSON Schema: " + violations(ve)
		}
		return baton.Errorf(baton.Invalid, op, "schema of %s does not compile: %s", typ, detail)
	}
	return r.update(func(s *registryState) error {
		if _, dup := s.schemas[typ]; dup {
			return baton.Errorf(baton.Invalid, op, "a schema for %s is already registered", typ)
		}
		s.schemas[typ] = sch
		return nil
	})
}

// noLoader refuses every $ref outside the schema itself.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: schemas may not refer to other documents", url)
}

// Sources returns the older types whose events Prepare can bring up to typ
// through a chain of upcasters, oldest first: with upcasters v1->v2 and
// v2->v3, Sources("order.placed.v3") is ["order.placed.v1",
// "order.placed.v2"]. It returns nil when there are none.
func (r *Registry) Sources(typ string) []string {
	name, v, reason := parseType(typ)
	if reason != "" {
		return nil
	}
	return sources(r.load(), name, v)
}

func sources(s *registryState, name string, v int) []string {
	if s == nil {
		return nil
	}
	var out []string
	for k := v - 1; k >= 1; k-- {
		if _, ok := s.up[step{name, k}]; !ok {
			break
		}
		out = append(out, typeString(name, k))
	}
	slices.Reverse(out)
	return out
}

// Prepare brings e to type want, the type a handler takes. An event of type
// want is kept as it is; an event of an older version of the same name is
// run through the chain of upcasters up to want, its Type updated and its
// DataSchema, which described the old shape, cleared. Anything else is an
// Invalid error that says which versions the handler accepts. Then, if a
// schema is registered for want, the data must match it (absent data is
// checked as null).
//
// A nil *Registry has no upcasters and no schemas.
func (r *Registry) Prepare(e baton.Event, want string) (baton.Event, error) {
	const op = "prepare event"
	if e.Type == want {
		return e, r.check(e)
	}
	wantName, wantV, reason := parseType(want)
	if reason != "" {
		return e, baton.Errorf(baton.Invalid, op, "handler type: %s", typeError(want, reason))
	}
	name, v, reason := parseType(e.Type)
	if reason != "" {
		return e, baton.Errorf(baton.Invalid, op, "%s", typeError(e.Type, reason))
	}
	if name != wantName {
		return e, baton.Errorf(baton.Invalid, op, "unsupported type %q (this handler takes %q)", e.Type, want)
	}
	s := r.load()
	if s == nil || v > wantV {
		msg := fmt.Sprintf("unsupported version %d of %q (this handler takes v%d", v, name, wantV)
		if src := sources(s, wantName, wantV); len(src) > 0 {
			vs := make([]string, len(src))
			for i, t := range src {
				vs[i] = t[len(name)+1:]
			}
			msg += "; upcasters exist from " + strings.Join(vs, ", ")
		}
		return e, baton.Errorf(baton.Invalid, op, "%s)", msg)
	}
	// Check the whole chain first, so that a missing link costs no work.
	for k := v; k < wantV; k++ {
		if _, ok := s.up[step{name, k}]; !ok {
			if k == v {
				return e, baton.Errorf(baton.Invalid, op, "no upcaster from %s to %s", e.Type, want)
			}
			return e, baton.Errorf(baton.Invalid, op, "no upcaster from %s to %s (the chain stops at v%d)", e.Type, want, k)
		}
	}
	for k := v; k < wantV; k++ {
		data, err := upcast(s.up[step{name, k}], e.Data)
		if err != nil {
			code := baton.Invalid
			var be *baton.Error
			if errors.As(err, &be) {
				code = be.Code
			}
			return e, &baton.Error{Code: code, Op: op, Err: fmt.Errorf("upcast %s %s from v%d to v%d: %w", e.Type, e.ID, k, k+1, err)}
		}
		if len(data) > 0 && !jsonx.Valid(data) {
			return e, baton.Errorf(baton.Internal, op, "upcaster of %s.v%d returned invalid JSON", name, k)
		}
		e.Data = data
	}
	e.Type = want
	e.DataSchema = ""
	return e, r.check(e)
}

// upcast runs fn, turning a panic into an error: an upcaster is user code
// on the path of every delivery and must not take the process down.
func upcast(fn upcaster, data json.RawMessage) (out json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &baton.Error{Code: baton.Internal, Err: fmt.Errorf("upcaster panicked: %v", p)}
		}
	}()
	return fn(data)
}

// check validates e's data against the schema of its type, if any.
func (r *Registry) check(e baton.Event) error {
	s := r.load()
	if s == nil || len(s.schemas) == 0 {
		return nil
	}
	sch := s.schemas[e.Type]
	if sch == nil {
		return nil
	}
	var doc any // absent data is checked as null
	if len(e.Data) > 0 {
		var err error
		if doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(e.Data)); err != nil {
			return baton.Errorf(baton.Invalid, "prepare event", "data of %s %s is not JSON: %v", e.Type, e.ID, err)
		}
	}
	if err := sch.Validate(doc); err != nil {
		detail := err.Error()
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			detail = violations(ve)
		}
		return baton.Errorf(baton.Invalid, "prepare event", "data of %s does not match its schema: %s", strings.TrimSpace(e.Type+" "+e.ID), detail)
	}
	return nil
}

// violations lists the leaves of a validation error on one line, such as
// "at '/amount': got string, want number; at the top level: ...", without the schema
// URL and indentation of the library's own text.
func violations(ve *jsonschema.ValidationError) string {
	var out []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			// The library's text for one error is "at '<ptr>': <msg>",
			// sometimes preceded by the schema URL on a line of its own.
			line := e.Error()
			if i := strings.LastIndexByte(line, '\n'); i >= 0 {
				line = line[i+1:]
			}
			line = strings.TrimPrefix(line, "- ")
			if rest, ok := strings.CutPrefix(line, "at '':"); ok {
				line = "at the top level:" + rest
			}
			out = append(out, line)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	const max = 5
	if len(out) > max {
		out = append(out[:max], "and "+strconv.Itoa(len(out)-max)+" more")
	}
	return strings.Join(out, "; ")
}

// oneLine folds a multi-line message from the schema library.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
