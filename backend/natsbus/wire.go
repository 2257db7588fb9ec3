package natsbus

import (
	"encoding/json"
	"strings"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
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

// encode maps m to a NATS message on subject: CloudEvents binary mode ("ce-"
// headers, data as the body) when m.Body is a valid event, else the body as
// it is with headerRaw set.
func encode(subject string, m bus.Message) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Header: nats.Header{}}
	e, err := event.Unmarshal(m.Body)
	if err != nil {
		msg.Header[headerRaw] = []string{"1"}
		if m.ID != "" {
			msg.Header[headerID] = []string{m.ID}
		}
		msg.Data = m.Body
		return msg
	}
	headers, body := event.ToBinary(e, event.NATSPrefix)
	for k, v := range headers {
		// Set directly: nats.Header.Set would turn "ce-id" into "Ce-Id",
		// and the binding's names are lower-case.
		msg.Header[k] = []string{v}
	}
	msg.Data = body
	return msg
}

// decode rebuilds the message a NATS message carries, for a delivery of type
// typ. Binary mode becomes structured JSON again; a message in structured
// mode (content-type application/cloudevents+json) and a raw one are handed
// on as they are. A binary message that does not make a valid event is
// handed on as the structured JSON of what it holds, so that decoding it
// fails with the reason and the consumer dead-letters it with its id.
func decode(typ string, header nats.Header, data []byte) bus.Message {
	out := bus.Message{Type: typ}
	if len(header[headerRaw]) > 0 {
		out.ID = first(header, headerID)
		out.Body = data
		return out
	}
	headers := make(map[string]string, len(header))
	for k, v := range header {
		if len(v) > 0 {
			headers[k] = v[0]
		}
	}
	ct := ""
	for k, v := range headers {
		if strings.EqualFold(k, "content-type") {
			ct = v
		}
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if strings.EqualFold(strings.TrimSpace(ct), event.ContentType) {
		out.Body = data
		if e, err := event.Unmarshal(data); err == nil || e.ID != "" {
			out.ID = e.ID
		}
		return out
	}
	e, err := event.FromBinary(headers, event.NATSPrefix, data)
	if err == nil {
		if body, err := event.Marshal(e); err == nil {
			out.ID, out.Body = e.ID, body
			return out
		}
	}
	out.ID = attr(headers, "id")
	out.Body = structured(headers, data)
	return out
}

// structured writes the attributes of headers and data as a structured
// event without checking them: the receiver's decoder reports what is wrong.
func structured(headers map[string]string, data []byte) []byte {
	b := []byte{'{'}
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	for k, v := range headers {
		name := ""
		switch {
		case strings.EqualFold(k, "content-type"):
			name = "datacontenttype"
		case len(k) > len(event.NATSPrefix) && strings.EqualFold(k[:len(event.NATSPrefix)], event.NATSPrefix):
			name = strings.ToLower(k[len(event.NATSPrefix):])
		default:
			continue
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
		b = append(b, `"data":`...)
		b = append(b, data...)
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

// attr returns the value of the CloudEvents attribute name in headers, in
// any case.
func attr(headers map[string]string, name string) string {
	for k, v := range headers {
		if strings.EqualFold(k, event.NATSPrefix+name) {
			return v
		}
	}
	return ""
}

func first(h nats.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
