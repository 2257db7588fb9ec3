package event

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/jsonx"
)

// ContentType is the media type of an event in structured mode.
const ContentType = "application/cloudevents+json"

// Marshal encodes e in CloudEvents structured mode (ContentType): the
// attributes and the extensions correlationid, causationid, traceparent,
// tracestate and hops as top-level members, data as JSON. Empty optional attributes, zero
// time and zero hops are left out; time is written in UTC. An empty
// SpecVersion is written as "1.0", the only version Baton writes.
//
// Marshal refuses an event that fails Validate or whose data is not JSON.
func Marshal(e baton.Event) ([]byte, error) {
	spec := e.SpecVersion
	if spec == "" {
		spec = baton.SpecVersion
	}
	if err := validate(&e, spec); err != nil {
		return nil, err
	}
	if len(e.Data) > 0 && !jsonx.Valid(e.Data) {
		return nil, baton.Errorf(baton.Invalid, "marshal event", "data of %s %s is not valid JSON", e.Type, e.ID)
	}
	// 256 covers the member names, quotes, time and hops.
	n := 256 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) + len(e.DataContentType) +
		len(e.DataSchema) + len(e.CorrelationID) + len(e.CausationID) + len(e.TraceParent) + len(e.TraceState) + len(e.Data)
	b := make([]byte, 0, n+n/16)
	b = append(b, `{"specversion":`...)
	b = jsonx.AppendString(b, spec)
	b = append(b, `,"id":`...)
	b = jsonx.AppendString(b, e.ID)
	b = append(b, `,"source":`...)
	b = jsonx.AppendString(b, e.Source)
	b = append(b, `,"type":`...)
	b = jsonx.AppendString(b, e.Type)
	b = appendMember(b, `,"subject":`, e.Subject)
	if !e.Time.IsZero() {
		b = append(b, `,"time":"`...)
		// validate checked the year, the only thing AppendFormat can get
		// wrong for RFC 3339.
		b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = appendMember(b, `,"datacontenttype":`, e.DataContentType)
	b = appendMember(b, `,"dataschema":`, e.DataSchema)
	b = appendMember(b, `,"correlationid":`, e.CorrelationID)
	b = appendMember(b, `,"causationid":`, e.CausationID)
	b = appendMember(b, `,"traceparent":`, e.TraceParent)
	b = appendMember(b, `,"tracestate":`, e.TraceState)
	if e.Hops != 0 {
		b = append(b, `,"hops":`...)
		b = strconv.AppendInt(b, int64(e.Hops), 10)
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	return append(b, '}'), nil
}

func appendMember(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	return jsonx.AppendString(append(b, key...), value)
}

// Unmarshal decodes an event in CloudEvents structured mode and validates it.
// It is strict about JSON (anything encoding/json rejects is refused, with
// "malformed JSON: ..." and encoding/json's reason) and about the types of
// the attributes it knows; members it does not know, such as other
// extensions, are skipped. Names match exactly (CloudEvents names are
// lower-case); as in encoding/json, null leaves an attribute unset. A
// member named twice at the top level (spelt alike once unescaped) is
// refused, naming it: readers disagree on which occurrence counts. Members
// of data are data, not checked. Baton carries JSON data only, so
// data_base64 is refused.
//
// Events travel between Baton's parts as values, mapped to each transport's
// native headers (see Binding): structured mode is read only where it comes
// in (a plain client that chooses it, raw bytes replayed, dead letters), so
// encoding/json does the work.
//
// Data is a copy: the event does not hold on to b. When only validation
// fails, the decoded event comes with the error, so that a dead letter can
// still name its id and correlation id.
func Unmarshal(b []byte) (baton.Event, error) {
	e, err := decode(b)
	if err != nil {
		return baton.Event{}, err
	}
	return e, Validate(e)
}

func decode(b []byte) (baton.Event, error) {
	var e baton.Event
	// One pass for the syntax, with encoding/json's reasons; the walk
	// below then meets well-formed JSON only.
	var whole json.RawMessage
	if err := json.Unmarshal(b, &whole); err != nil {
		return e, baton.Errorf(baton.Invalid, "unmarshal event", "malformed JSON: %v", err)
	}
	if whole[0] != '{' {
		return e, baton.Errorf(baton.Invalid, "unmarshal event", "malformed JSON: the event is not a JSON object")
	}
	strs := map[string]*string{
		"id": &e.ID, "source": &e.Source, "specversion": &e.SpecVersion, "type": &e.Type,
		"subject": &e.Subject, "datacontenttype": &e.DataContentType, "dataschema": &e.DataSchema,
		"correlationid": &e.CorrelationID, "causationid": &e.CausationID, "traceparent": &e.TraceParent,
		"tracestate": &e.TraceState,
	}
	dec := json.NewDecoder(bytes.NewReader(whole))
	dec.Token() // the '{' checked above
	base64 := false
	seen := make(map[string]bool, 16)
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		// A repeated member means what each reader of the JSON chooses
		// (encoding/json keeps the last, others the first): a sender could
		// show one id to a filter and another to Baton.
		if seen[key] {
			return e, baton.Errorf(baton.Invalid, "unmarshal event", "duplicate member %q: an event names each attribute once", key)
		}
		seen[key] = true
		var raw json.RawMessage // a copy of the member's bytes
		if err := dec.Decode(&raw); err != nil {
			return e, baton.Errorf(baton.Invalid, "unmarshal event", "malformed JSON: %v", err)
		}
		if string(raw) == "null" && key != "data" {
			continue // like encoding/json: null changes nothing
		}
		switch {
		case strs[key] != nil:
			if raw[0] != '"' {
				return e, attrError(key, "want a string, got %s", kind(raw))
			}
			json.Unmarshal(raw, strs[key]) // a valid JSON string: cannot fail
		case key == "time":
			if raw[0] != '"' {
				return e, attrError("time", "want an RFC 3339 string, got %s", kind(raw))
			}
			// Like encoding/json, which hands time.Time the literal as it
			// is: a time spelt with escapes is not RFC 3339.
			if err := e.Time.UnmarshalText(raw[1 : len(raw)-1]); err != nil {
				return e, attrError("time", "%q is not an RFC 3339 time", raw[1:len(raw)-1])
			}
		case key == "hops":
			n, ok := parseInt([]byte(raw))
			if !ok {
				return e, attrError("hops", "want an integer, got %s", truncate(raw))
			}
			e.Hops = n
		case key == "data":
			e.Data = raw
		case key == "data_base64":
			base64 = true
		}
	}
	if base64 {
		return e, baton.Errorf(baton.Invalid, "unmarshal event", "data_base64 is not supported: Baton events carry JSON data or text (a dead letter keeps a body that was neither as data_base64, and replaying it fails again)")
	}
	return e, nil
}

// kind names the JSON type of a well-formed value, for errors.
func kind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

func attrError(name, format string, args ...any) error {
	return baton.Errorf(baton.Invalid, "unmarshal event", "invalid attribute %q: "+format, append([]any{name}, args...)...)
}

// parseInt reads a decimal integer that fits an int: a JSON number without
// fraction or exponent, or a header value.
func parseInt[T string | []byte](b T) (int, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > uint64(math.MaxInt)+1 {
			return 0, false
		}
		return int(-n), true
	}
	if n > math.MaxInt {
		return 0, false
	}
	return int(n), true
}

func truncate(b []byte) string {
	const max = 32
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
