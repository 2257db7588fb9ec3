package natsbus

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/internal/jsonx"
	"github.com/nats-io/nats.go"
)

// Header names Baton sets besides the CloudEvents ones.
const (
	// headerRaw marks a message whose body is not an event Baton could read
	// when it was published: it travels, and comes back, as it was given,
	// so that the consumer dead-letters it.
	headerRaw = "baton-raw"
	// headerID carries the message id of a raw message.
	headerID = "baton-id"
)

// metaPrefix starts the headers that carry a message's metadata
// (bus.Message.Meta): "baton-replyto", "baton-run" and so on.
const metaPrefix = "baton-"

// encode maps m to a NATS message on subject in one step: CloudEvents
// binary mode ("ce-" headers, event.NATS; data as the body) with the
// metadata in headers of its own, or, for raw bytes, the bytes as they are
// with headerRaw set.
func encode(subject string, m bus.Message) *nats.Msg {
	// Headers are set directly: nats.Header.Set would turn "ce-id" into
	// "Ce-Id", and the binding's names are lower-case.
	h := make(nats.Header, 12+len(m.Meta))
	msg := &nats.Msg{Subject: subject, Header: h}
	for k, v := range m.Meta {
		h[metaPrefix+k] = []string{v}
	}
	if m.Raw != nil {
		h[headerRaw] = []string{"1"}
		if m.ID != "" {
			h[headerID] = []string{m.ID}
		}
		msg.Data = m.Raw
		return msg
	}
	event.NATS.Headers(&m.Event, func(k, v string) { h[k] = []string{v} })
	if m.DataContentType != "" {
		h["content-type"] = []string{m.DataContentType}
	}
	msg.Data = event.Body(&m.Event)
	return msg
}

// decode reads the event a NATS message carries, for a delivery of type
// typ, in one step. A message in structured mode (content-type
// application/cloudevents+json) and a raw one are read as structured JSON.
// A binary message that does not make a valid event is handed on with the
// error and, as its body, the structured JSON of what it holds, so that its
// dead letter shows its attributes.
func decode(typ string, header nats.Header, data []byte) bus.Delivery {
	var meta map[string]string
	for k, v := range header {
		if len(v) == 0 || k == headerRaw || k == headerID || !strings.HasPrefix(k, metaPrefix) {
			continue
		}
		if meta == nil {
			meta = make(map[string]string, 4)
		}
		meta[k[len(metaPrefix):]] = v[0]
	}
	if len(header[headerRaw]) > 0 {
		return bus.Structured(typ, first(header, headerID), data, meta)
	}
	r := event.NATS.Reader()
	ct := ""
	for k, v := range header {
		if len(v) > 0 && r.Header(k, v[0]) && strings.EqualFold(k, "content-type") {
			ct = v[0]
		}
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if strings.EqualFold(strings.TrimSpace(ct), event.ContentType) {
		return bus.Structured(typ, "", data, meta)
	}
	e, err := r.Event(data)
	if err == nil {
		return bus.Delivery{Message: bus.Message{Event: e, Meta: meta}}
	}
	if e.ID == "" && e.Type == "" {
		e = r.Partial()
	}
	headers := make(map[string]string, len(header))
	for k, v := range header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	d := bus.Delivery{Message: bus.Message{Event: e, Meta: meta, Raw: structured(headers, data)}, Err: err}
	if d.Type == "" {
		d.Type = typ
	}
	return d
}

// structured writes the attributes of headers and data as a structured
// event without checking the attributes: the receiver's decoder reports
// what is wrong. The body goes in as CloudEvents' JSON format maps it, and
// never as JSON text of its own: a body that is one JSON value as data,
// text of a non-JSON content type as a JSON string, and anything else
// (malformed JSON, bytes that are not UTF-8) base64-encoded as data_base64,
// which Baton's decoder refuses again, so that a replay of the dead letter
// cannot turn what was malformed into an event. Pasted as it came, a body
// such as `null,"id":"forged"` would have added members of its own.
func structured(headers map[string]string, data []byte) []byte {
	b := []byte{'{'}
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	ct := ""
	for k, v := range headers {
		name := ""
		switch {
		case strings.EqualFold(k, "content-type"):
			name = "datacontenttype"
			ct = v
		case len(k) > len(event.NATSPrefix) && strings.EqualFold(k[:len(event.NATSPrefix)], event.NATSPrefix):
			name = strings.ToLower(k[len(event.NATSPrefix):])
		default:
			continue
		}
		if name == "data" || name == "data_base64" {
			continue // the body is the data, not a header
		}
		sep()
		key, _ := json.Marshal(name)
		b = append(b, key...)
		b = append(b, ':')
		if name == "hops" && isInt(v) {
			b = append(b, v...)
			continue
		}
		val, _ := json.Marshal(v)
		b = append(b, val...)
	}
	if len(data) > 0 {
		sep()
		switch {
		case event.IsJSONType(ct) && jsonx.Valid(data):
			b = append(b, `"data":`...)
			b = append(b, data...)
		case !event.IsJSONType(ct) && utf8.Valid(data):
			b = jsonx.AppendString(append(b, `"data":`...), string(data))
		default:
			b = append(b, `"data_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, data)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

func isInt(s string) bool {
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func first(h nats.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
