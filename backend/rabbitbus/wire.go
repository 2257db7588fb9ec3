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

// encode turns a structured-mode message into a persistent AMQP message in
// binary mode.
func encode(m bus.Message) amqp.Publishing {
	p := amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Type:         m.Type,
	}
	e, err := event.Unmarshal(m.Body)
	if err != nil {
		p.Headers = amqp.Table{headerRaw: true}
		p.ContentType = event.ContentType
		p.Body = m.Body
		return p
	}
	h, body := event.ToBinary(e, event.AMQPPrefix)
	t := make(amqp.Table, len(h))
	for k, v := range h {
		if k == "content-type" {
			// The AMQP binding maps datacontenttype to the content-type
			// property, not to an application property.
			p.ContentType = v
			continue
		}
		t[k] = v
	}
	p.Headers = t
	p.Body = body
	return p
}

// decode turns a delivery back into a structured-mode message. What cannot
// be read as an event is handed over as it came, with whatever type and id
// its properties name, for the runtime to dead-letter.
func decode(d *amqp.Delivery, namespace string) bus.Message {
	m := bus.Message{Type: d.Type, ID: d.MessageId}
	if m.Type == "" && d.Exchange == namespace {
		m.Type = d.RoutingKey
	}
	if isRaw(d) {
		m.Body = d.Body
		return m
	}
	h := make(map[string]string, len(d.Headers)+1)
	for k, v := range d.Headers {
		if !strings.HasPrefix(k, event.AMQPPrefix) {
			continue
		}
		switch v := v.(type) {
		case string:
			h[k] = v
		case []byte:
			h[k] = string(v)
		default:
			h[k] = fmt.Sprint(v)
		}
	}
	if d.ContentType != "" {
		h["content-type"] = d.ContentType
	}
	if e, err := event.FromBinary(h, event.AMQPPrefix, d.Body); err == nil {
		if body, err := event.Marshal(e); err == nil {
			return bus.Message{Type: e.Type, ID: e.ID, Body: body}
		}
	}
	if t := h[event.AMQPPrefix+"type"]; t != "" {
		m.Type = t
	}
	if id := h[event.AMQPPrefix+"id"]; id != "" {
		m.ID = id
	}
	m.Body = d.Body
	return m
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
