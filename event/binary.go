package event

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/jsonx"
)

// Header name prefixes of the CloudEvents protocol bindings in binary mode.
const (
	AMQPPrefix = "cloudEvents_" // AMQP application properties
	NATSPrefix = "ce-"          // NATS headers, as in HTTP
)

// The attributes carried in headers, in the order of binaryNames.
const (
	bID = iota
	bSource
	bSpecVersion
	bType
	bSubject
	bTime
	bDataSchema
	bCorrelationID
	bCausationID
	bTraceParent
	bTraceState
	bHops
	nBinaryAttrs
)

var binaryNames = [nBinaryAttrs]string{
	"id", "source", "specversion", "type", "subject", "time",
	"dataschema", "correlationid", "causationid", "traceparent", "tracestate", "hops",
}

// A Binding maps events to and from one protocol binding of CloudEvents in
// binary mode: each attribute but data and datacontenttype is the header
// prefix+name, datacontenttype is the protocol's content type, and data is
// the body. A transport sets and reads its native headers through it
// directly, one header at a time, with no intermediate map and no JSON
// envelope.
type Binding struct {
	prefix string
	keys   [nBinaryAttrs]string // prefix+name, built once
	// fold: header names match in any case (HTTP, NATS), not exactly (AMQP
	// property names are case-sensitive).
	fold bool
}

// The bindings Baton's transports speak.
var (
	AMQP = newBinding(AMQPPrefix, false) // AMQP application properties
	NATS = newBinding(NATSPrefix, true)  // NATS headers, as in HTTP
)

func newBinding(prefix string, fold bool) *Binding {
	b := &Binding{prefix: prefix, fold: fold}
	for i, name := range binaryNames {
		b.keys[i] = prefix + name
	}
	return b
}

// Headers calls set with the header name and value of each attribute of e
// but data and datacontenttype: time in RFC 3339 in UTC, hops in decimal,
// empty ones left out, an empty SpecVersion as "1.0". e should be valid
// (see Validate).
func (b *Binding) Headers(e *baton.Event, set func(key, value string)) {
	spec := e.SpecVersion
	if spec == "" {
		spec = baton.SpecVersion
	}
	for i, v := range [...]string{e.ID, e.Source, spec, e.Type, e.Subject} {
		if v != "" {
			set(b.keys[i], v)
		}
	}
	if !e.Time.IsZero() {
		set(b.keys[bTime], e.Time.UTC().Format(time.RFC3339Nano))
	}
	for i, v := range [...]string{e.DataSchema, e.CorrelationID, e.CausationID, e.TraceParent, e.TraceState} {
		if v != "" {
			set(b.keys[bDataSchema+i], v)
		}
	}
	if e.Hops != 0 {
		set(b.keys[bHops], strconv.Itoa(e.Hops))
	}
}

// Body is the body of e in binary mode: its data, except that data of a
// non-JSON content type such as text/plain, held as a JSON string, is sent
// as the string's bytes, as the CloudEvents JSON format maps it. The body
// aliases e.Data.
func Body(e *baton.Event) []byte {
	body := e.Data
	if len(body) > 0 && body[0] == '"' && !IsJSONType(e.DataContentType) {
		var s string
		if json.Unmarshal(body, &s) == nil {
			body = []byte(s)
		}
	}
	return body
}

// Reader reads an event from binary mode: feed it every header, then the
// body.
func (b *Binding) Reader() BinaryReader { return BinaryReader{b: b} }

// BinaryReader builds an event from binary-mode headers. With the AMQP
// binding header names must match exactly; with NATS they match in any
// case. Headers without the prefix, and prefixed ones that are not
// attributes Baton knows, are ignored.
type BinaryReader struct {
	b    *Binding
	e    baton.Event
	vals [nBinaryAttrs]string
	from [nBinaryAttrs + 1]string // the header each value came from
	err  error
}

const ctKey = nBinaryAttrs

// Header takes one header and reports whether it is one of the binding's:
// a prefixed attribute Baton knows, or the content type, read from
// "content-type" in any case.
func (r *BinaryReader) Header(key, value string) bool {
	i := ctKey
	if !strings.EqualFold(key, "content-type") {
		i = r.b.index(key)
	}
	if i < 0 {
		return false
	}
	r.set(i, key, value)
	return true
}

// Attribute names the attribute that the header key carries ("id" for
// "cloudEvents_id"), or returns "" for a header that is not one of the
// binding's attributes. A transport whose headers are typed checks a
// value against its attribute's type before it hands the reader its text.
func (b *Binding) Attribute(key string) string {
	if i := b.index(key); i >= 0 {
		return binaryNames[i]
	}
	return ""
}

// index is the attribute a prefixed header key sets, or -1.
func (b *Binding) index(key string) int {
	n := len(b.prefix)
	if len(key) <= n || !(key[:n] == b.prefix || b.fold && strings.EqualFold(key[:n], b.prefix)) {
		return -1
	}
	name := key[n:]
	if b.fold {
		name = strings.ToLower(name)
	}
	return binaryIndex(name)
}

// ContentType takes the content type from a protocol property of its own,
// such as AMQP's content-type.
func (r *BinaryReader) ContentType(key, value string) { r.set(ctKey, key, value) }

func (r *BinaryReader) set(i int, key, value string) {
	if r.from[i] != "" {
		if r.err == nil {
			name := "datacontenttype"
			if i < nBinaryAttrs {
				name = binaryNames[i]
			}
			r.err = binaryError("headers %q and %q both set attribute %q", r.from[i], key, name)
		}
		return
	}
	r.from[i] = key
	if i == ctKey {
		r.e.DataContentType = value
	} else {
		r.vals[i] = value
	}
}

// Partial is what the headers read so far say of the event, unchecked: its
// type and id, for routing and naming a message that Event refuses.
func (r *BinaryReader) Partial() baton.Event {
	return baton.Event{ID: r.vals[bID], Type: r.vals[bType], CorrelationID: r.vals[bCorrelationID], Subject: r.vals[bSubject]}
}

// Event returns the event the headers and body make, and validates it. A
// body of JSON content type (or none) must be JSON; a body of another
// content type must be UTF-8 text and becomes a JSON string. Data is a copy
// of body. As with Unmarshal, an event that fails only Validate comes with
// the error.
func (r *BinaryReader) Event(body []byte) (baton.Event, error) {
	if r.err != nil {
		return baton.Event{}, r.err
	}
	e, vals := r.e, &r.vals
	e.ID = vals[bID]
	e.Source = vals[bSource]
	e.SpecVersion = vals[bSpecVersion]
	e.Type = vals[bType]
	e.Subject = vals[bSubject]
	e.DataSchema = vals[bDataSchema]
	e.CorrelationID = vals[bCorrelationID]
	e.CausationID = vals[bCausationID]
	e.TraceParent = vals[bTraceParent]
	e.TraceState = vals[bTraceState]
	if v := vals[bTime]; v != "" {
		if err := e.Time.UnmarshalText([]byte(v)); err != nil {
			return baton.Event{}, binaryError("header %q: %q is not an RFC 3339 time", r.from[bTime], v)
		}
	}
	if v := vals[bHops]; v != "" {
		n, ok := parseInt(v)
		if !ok {
			return baton.Event{}, binaryError("header %q: %q is not an integer", r.from[bHops], v)
		}
		e.Hops = n
	}
	if len(body) > 0 {
		switch {
		case IsJSONType(e.DataContentType):
			if !jsonx.Valid(body) {
				// Counted as malformed JSON, as the same data in structured
				// mode would be; the event comes with the error, so that
				// its dead letter names its id and correlation id.
				return e, binaryError("malformed JSON: the body of %s %s is not valid JSON (content type %q)", e.Type, e.ID, e.DataContentType)
			}
			e.Data = append(json.RawMessage(nil), body...)
		case utf8.Valid(body):
			e.Data = jsonx.AppendString(make(json.RawMessage, 0, len(body)+2), string(body))
		default:
			return baton.Event{}, binaryError("body of %s %s has content type %q and is not UTF-8 text: Baton events carry JSON or text data",
				e.Type, e.ID, e.DataContentType)
		}
	}
	return e, Validate(e)
}

func binaryIndex(name string) int {
	for i, n := range binaryNames {
		if n == name {
			return i
		}
	}
	return -1
}

func binaryError(format string, args ...any) error {
	return baton.Errorf(baton.Invalid, "decode binary event", format, args...)
}

// IsJSONType reports whether data of content type ct is JSON: no type at all
// (JSON is Baton's default), application/json, text/json or any +json type.
// Data of any other type is text, held as a JSON string.
func IsJSONType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if ct == "" || strings.EqualFold(ct, "application/json") || strings.EqualFold(ct, "text/json") {
		return true
	}
	return len(ct) >= 5 && strings.EqualFold(ct[len(ct)-5:], "+json")
}
