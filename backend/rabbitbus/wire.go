package rabbitbus

import (
	"fmt"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
)

// Application properties Baton adds to the CloudEvents ones.
const (
	// headerAttempt counts Nacks: absent means 1. A copy published by Nack
	// carries the next number; a message the broker hands back after a
	// consumer went away keeps its number.
	headerAttempt = "baton_attempt"
	// headerRaw marks a body Baton could not read as an event when it was
	// published: it travels as it came, in structured mode, so that the
	// consumer's runtime can dead-letter it with its bytes intact.
	headerRaw = "baton_raw"
	// headerDue (Unix milliseconds) holds a redelivery time further away than
	// the largest delay bucket; the message goes round the largest bucket
	// until it is due.
	headerDue = "baton_due"
)

// metaPrefix starts the application properties that carry a message's
// metadata (bus.Message.Meta): "baton-replyto", "baton-run" and so on.
const metaPrefix = "baton-"

// encode maps m to a persistent AMQP message in CloudEvents binary mode, in
// one step: each attribute an application property (event.AMQP),
// datacontenttype the content-type property, data the body, and the
// metadata properties of their own. Raw bytes go in structured mode, as
// they are.
func encode(m bus.Message) amqp.Publishing {
	p := amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Type:         m.Type,
	}
	t := make(amqp.Table, 12+len(m.Meta))
	for k, v := range m.Meta {
		t[metaPrefix+k] = v
	}
	p.Headers = t
	if m.Raw != nil {
		t[headerRaw] = true
		p.ContentType = event.ContentType
		p.Body = m.Raw
		return p
	}
	event.AMQP.Headers(&m.Event, func(k, v string) { t[k] = v })
	// The AMQP binding maps datacontenttype to the content-type property,
	// not to an application property.
	p.ContentType = m.DataContentType
	p.Body = event.Body(&m.Event)
	return p
}

// decode reads a delivery's event from its properties and body, in one
// step. What cannot be read as an event is handed on with the error, the
// body as it came, and whatever type and id its properties name, for the
// runtime to dead-letter.
func decode(d *amqp.Delivery, namespace string) bus.Delivery {
	typ := d.Type
	if typ == "" && d.Exchange == namespace {
		typ = d.RoutingKey
	}
	var meta map[string]string
	r := event.AMQP.Reader()
	for k, v := range d.Headers {
		switch {
		case strings.HasPrefix(k, event.AMQPPrefix):
			r.Header(k, headerString(v))
		case strings.HasPrefix(k, metaPrefix):
			if meta == nil {
				meta = make(map[string]string, 4)
			}
			meta[k[len(metaPrefix):]] = headerString(v)
		}
	}
	if isRaw(d) {
		return bus.Structured(typ, d.MessageId, d.Body, meta)
	}
	if d.ContentType != "" {
		r.ContentType("content-type", d.ContentType)
	}
	e, err := r.Event(d.Body)
	if err == nil {
		return bus.Delivery{Message: bus.Message{Event: e, Meta: meta}}
	}
	if e.ID == "" && e.Type == "" {
		e = r.Partial()
	}
	dl := bus.Delivery{Message: bus.Message{Event: e, Meta: meta, Raw: d.Body}, Err: err}
	if dl.Type == "" {
		dl.Type = typ
	}
	if dl.ID == "" {
		dl.ID = d.MessageId
	}
	if dl.Raw == nil {
		dl.Raw = []byte{}
	}
	return dl
}

// headerString reads an application property as text: plain clients may
// send attributes as byte arrays or numbers.
func headerString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// isRaw reports whether d is in structured mode: published raw by Baton, or
// by a plain client that chose the CloudEvents structured content type.
func isRaw(d *amqp.Delivery) bool {
	if v, ok := d.Headers[headerRaw].(bool); ok && v {
		return true
	}
	ct := d.ContentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), event.ContentType)
}

// attempt reads headerAttempt; absent or unreadable means 1.
func attempt(h amqp.Table) int {
	n := 1
	switch v := h[headerAttempt].(type) {
	case int32:
		n = int(v)
	case int64:
		n = int(v)
	case int:
		n = v
	case int16:
		n = int(v)
	case int8:
		n = int(v)
	case uint8:
		n = int(v)
	case uint16:
		n = int(v)
	case uint32:
		n = int(v)
	case string:
		if i, err := strconv.Atoi(v); err == nil {
			n = i
		}
	}
	return max(n, 1)
}

// republish is the publishing of a copy of d, as Nack sends it.
func republish(d *amqp.Delivery, typ string, attempt int) amqp.Publishing {
	h := make(amqp.Table, len(d.Headers)+1)
	for k, v := range d.Headers {
		// What the broker added when it dead-lettered the message out of a
		// delay queue is not ours to carry on.
		if k == "x-death" || strings.HasPrefix(k, "x-first-death") || strings.HasPrefix(k, "x-last-death") {
			continue
		}
		h[k] = v
	}
	h[headerAttempt] = int32(attempt)
	return amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            typ,
		AppId:           d.AppId,
		Body:            d.Body,
	}
}
