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

// The attributes carried in headers, in the order of binaryKeys.
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
	bHops
	bReplyTo
	nBinaryAttrs
)

var binaryNames = [nBinaryAttrs]string{
	"id", "source", "specversion", "type", "subject", "time",
	"dataschema", "correlationid", "causationid", "traceparent", "hops", "replyto",
}

type binaryKeys [nBinaryAttrs]string

func keysFor(prefix string) *binaryKeys {
	var k binaryKeys
	for i, name := range binaryNames {
		k[i] = prefix + name
	}
	return &k
}

// The header names of the two bindings are built once, not per message.
var amqpKeys, natsKeys = keysFor(AMQPPrefix), keysFor(NATSPrefix)

// ToBinary maps e to CloudEvents binary mode: each attribute but data and
// datacontenttype becomes the header prefix+name (time in RFC 3339 in UTC,
// hops in decimal, empty ones left out), datacontenttype becomes
// headers["content-type"], and data becomes the body. Data of a non-JSON
// content type such as text/plain, held as a JSON string, is sent as the
// string's bytes, as the CloudEvents JSON format maps it.
//
// e should be valid (see Validate); an empty SpecVersion is sent as "1.0".
// The body aliases e.Data.
func ToBinary(e baton.Event, prefix string) (headers map[string]string, body []byte) {
	keys := amqpKeys
	switch prefix {
	case AMQPPrefix:
	case NATSPrefix:
		keys = natsKeys
	default:
		keys = keysFor(prefix)
	}
	spec := e.SpecVersion
	if spec == "" {
		spec = baton.SpecVersion
	}
	headers = make(map[string]string, 12)
	set := func(i int, v string) {
		if v != "" {
			headers[keys[i]] = v
		}
	}
	set(bID, e.ID)
	set(bSource, e.Source)
	set(bSpecVersion, spec)
	set(bType, e.Type)
	set(bSubject, e.Subject)
	if !e.Time.IsZero() {
		set(bTime, e.Time.UTC().Format(time.RFC3339Nano))
	}
	set(bDataSchema, e.DataSchema)
	set(bCorrelationID, e.CorrelationID)
	set(bCausationID, e.CausationID)
	set(bTraceParent, e.TraceParent)
	set(bReplyTo, e.ReplyTo)
	if e.Hops != 0 {
		set(bHops, strconv.Itoa(e.Hops))
	}
	if e.DataContentType != "" {
		headers["content-type"] = e.DataContentType
	}
	body = e.Data
	if len(body) > 0 && body[0] == '"' && !isJSONType(e.DataContentType) {
		var s string
		if json.Unmarshal(body, &s) == nil {
			body = []byte(s)
		}
	}
	return headers, body
}

// FromBinary is the inverse of ToBinary, and validates the event. With
// AMQPPrefix header names must match exactly, as AMQP property names are
// case-sensitive; with any other prefix they match in any case, as HTTP and
// NATS headers do. Headers without the prefix, and prefixed ones that are
// not attributes Baton knows, are ignored.
//
// The content type is read from "content-type" in any case. A body of JSON
// content type (or none) must be JSON; a body of another content type must
// be UTF-8 text and becomes a JSON string. Data is a copy of body. As with
// Unmarshal, an event that fails only Validate comes with the error.
func FromBinary(headers map[string]string, prefix string, body []byte) (baton.Event, error) {
	var (
		e     baton.Event
		vals  [nBinaryAttrs]string
		from  [nBinaryAttrs + 1]string // the header each value came from
		ctKey = nBinaryAttrs
	)
	fold := prefix != AMQPPrefix
	for k, v := range headers {
		i := -1
		if strings.EqualFold(k, "content-type") {
			i = ctKey
		} else if n := len(prefix); len(k) > n && (k[:n] == prefix || fold && strings.EqualFold(k[:n], prefix)) {
			name := k[n:]
			if fold {
				name = strings.ToLower(name)
			}
			i = binaryIndex(name)
		}
		if i < 0 {
			continue
		}
		if from[i] != "" {
			name := "datacontenttype"
			if i < nBinaryAttrs {
				name = binaryNames[i]
			}
			return baton.Event{}, binaryError("headers %q and %q both set attribute %q", from[i], k, name)
		}
		from[i] = k
		if i == ctKey {
			e.DataContentType = v
		} else {
			vals[i] = v
		}
	}
	e.ID = vals[bID]
	e.Source = vals[bSource]
	e.SpecVersion = vals[bSpecVersion]
	e.Type = vals[bType]
	e.Subject = vals[bSubject]
	e.DataSchema = vals[bDataSchema]
	e.CorrelationID = vals[bCorrelationID]
	e.CausationID = vals[bCausationID]
	e.TraceParent = vals[bTraceParent]
	e.ReplyTo = vals[bReplyTo]
	if v := vals[bTime]; v != "" {
		if err := e.Time.UnmarshalText([]byte(v)); err != nil {
			return baton.Event{}, binaryError("header %q: %q is not an RFC 3339 time", from[bTime], v)
		}
	}
	if v := vals[bHops]; v != "" {
		n, ok := parseInt(v)
		if !ok {
			return baton.Event{}, binaryError("header %q: %q is not an integer", from[bHops], v)
		}
		e.Hops = n
	}
	if len(body) > 0 {
		switch {
		case isJSONType(e.DataContentType):
			if !validJSON(body) {
				return baton.Event{}, binaryError("body of %s %s is not valid JSON (content type %q)", e.Type, e.ID, e.DataContentType)
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

// isJSONType reports whether data of content type ct is JSON: no type at all
// (JSON is Baton's default), application/json, text/json or any +json type.
func isJSONType(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if ct == "" || strings.EqualFold(ct, "application/json") || strings.EqualFold(ct, "text/json") {
		return true
	}
	return len(ct) >= 5 && strings.EqualFold(ct[len(ct)-5:], "+json")
}
