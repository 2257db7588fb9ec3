package event

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/jsonx"
)

// ContentType is the media type of an event in structured mode.
const ContentType = "application/cloudevents+json"

// Marshal encodes e in CloudEvents structured mode (ContentType): the
// attributes and the extensions correlationid, causationid, traceparent and
// hops as top-level members, data as JSON. Empty optional attributes, zero
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
	if len(e.Data) > 0 && !validJSON(e.Data) {
		return nil, baton.Errorf(baton.Invalid, "marshal event", "data of %s %s is not valid JSON", e.Type, e.ID)
	}
	// 256 covers the member names, quotes, time and hops.
	n := 256 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) + len(e.DataContentType) +
		len(e.DataSchema) + len(e.CorrelationID) + len(e.CausationID) + len(e.TraceParent) + len(e.Data)
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
// "malformed JSON: ...") and about the types of the attributes it knows;
// members it does not know, such as other extensions, are skipped. Names
// match exactly (CloudEvents names are lower-case); as in encoding/json, null
// leaves an attribute unset and, of a repeated member, every occurrence must
// be well typed and the last one counts. Baton carries JSON data only, so
// data_base64 is refused.
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
	var (
		e        baton.Event
		fields   [nStringAttrs]span
		decoded  [nStringAttrs]string // values that needed unescaping
		dataFrom = -1
		dataTo   int
		base64   bool
	)
	d := decoder{b: b}
	d.ws()
	if d.i >= len(b) {
		return e, d.syntax("unexpected end of JSON input")
	}
	if b[d.i] != '{' {
		return e, d.syntax("the event is not a JSON object")
	}
	d.i++
	d.ws()
	if d.i < len(b) && b[d.i] == '}' {
		d.i++
	} else {
		for {
			d.ws()
			key, err := d.key()
			if err != nil {
				return e, err
			}
			d.ws()
			attr := attrIndex(key)
			switch {
			case attr >= 0:
				if d.null() { // like encoding/json: null changes nothing
					break
				}
				raw, plain, err := d.stringValue(attrNames[attr], "a string")
				if err != nil {
					return e, err
				}
				if plain {
					fields[attr] = span{from: raw, to: d.i - 1, set: true}
					decoded[attr] = ""
				} else {
					fields[attr] = span{}
					decoded[attr] = unquote(b[raw-1 : d.i])
				}
			case string(key) == "time":
				if d.null() {
					break
				}
				raw, plain, err := d.stringValue("time", "an RFC 3339 string")
				if err != nil {
					return e, err
				}
				// Like encoding/json, which hands time.Time the literal as
				// is: a time spelt with escapes is not RFC 3339.
				text := b[raw : d.i-1]
				if err := e.Time.UnmarshalText(text); !plain || err != nil {
					return e, attrError("time", "%q is not an RFC 3339 time", text)
				}
			case string(key) == "hops":
				if d.null() {
					break
				}
				start := d.i
				if err := d.value(1); err != nil {
					return e, err
				}
				n, ok := parseInt(b[start:d.i])
				if !ok {
					return e, attrError("hops", "want an integer, got %s", truncate(b[start:d.i]))
				}
				e.Hops = n
			case string(key) == "data":
				start := d.i
				if err := d.value(1); err != nil {
					return e, err
				}
				dataFrom, dataTo = start, d.i
			case string(key) == "data_base64":
				base64 = true
				if err := d.value(1); err != nil {
					return e, err
				}
			default:
				if err := d.value(1); err != nil {
					return e, err
				}
			}
			d.ws()
			if d.i >= len(b) {
				return e, d.syntax("unexpected end of JSON input")
			}
			if b[d.i] == ',' {
				d.i++
				continue
			}
			if b[d.i] == '}' {
				d.i++
				break
			}
			return e, d.unexpected("after an object member")
		}
	}
	d.ws()
	if d.i < len(b) {
		return e, d.unexpected("after the top-level value")
	}
	if base64 {
		return e, baton.Errorf(baton.Invalid, "unmarshal event", "data_base64 is not supported: Baton events carry JSON data")
	}

	// All string attributes share one allocation.
	size := 0
	for i := range fields {
		size += fields[i].to - fields[i].from + len(decoded[i])
	}
	if size > 0 {
		var sb strings.Builder
		sb.Grow(size)
		var at [nStringAttrs][2]int
		for i := range fields {
			from := sb.Len()
			if fields[i].set {
				sb.Write(b[fields[i].from:fields[i].to])
			} else {
				sb.WriteString(decoded[i])
			}
			at[i] = [2]int{from, sb.Len()}
		}
		all := sb.String()
		for i, p := range at {
			*attrField(&e, i) = all[p[0]:p[1]]
		}
	}
	if dataFrom >= 0 {
		e.Data = append(json.RawMessage(nil), b[dataFrom:dataTo]...)
	}
	return e, nil
}

type span struct {
	from, to int
	set      bool
}

// The string attributes, in the order of attrNames.
const nStringAttrs = 10

var attrNames = [nStringAttrs]string{
	"id", "source", "specversion", "type", "subject",
	"datacontenttype", "dataschema", "correlationid", "causationid", "traceparent",
}

func attrIndex(key []byte) int {
	// A switch on string(key) compiles to comparisons without allocating.
	switch string(key) {
	case "id":
		return 0
	case "source":
		return 1
	case "specversion":
		return 2
	case "type":
		return 3
	case "subject":
		return 4
	case "datacontenttype":
		return 5
	case "dataschema":
		return 6
	case "correlationid":
		return 7
	case "causationid":
		return 8
	case "traceparent":
		return 9
	}
	return -1
}

func attrField(e *baton.Event, i int) *string {
	switch i {
	case 0:
		return &e.ID
	case 1:
		return &e.Source
	case 2:
		return &e.SpecVersion
	case 3:
		return &e.Type
	case 4:
		return &e.Subject
	case 5:
		return &e.DataContentType
	case 6:
		return &e.DataSchema
	case 7:
		return &e.CorrelationID
	case 8:
		return &e.CausationID
	default:
		return &e.TraceParent
	}
}

func attrError(name, format string, args ...any) error {
	return baton.Errorf(baton.Invalid, "unmarshal event", "invalid attribute %q: "+format, append([]any{name}, args...)...)
}

// unquote decodes a JSON string literal that the decoder has already checked,
// the rare case of a string with escapes or non-ASCII bytes. encoding/json
// does it exactly as the rest of Go reads JSON, invalid UTF-8 included.
func unquote(lit []byte) string {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		// Unreachable: the literal passed the decoder's checks.
		return string(lit)
	}
	return s
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
