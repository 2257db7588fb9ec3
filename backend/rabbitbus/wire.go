package rabbitbus

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
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
	raw := isRaw(d)
	var meta map[string]string
	// The first bad header by name, so that the reason does not depend on
	// the order a map is walked in.
	var bad error
	badKey := ""
	refuse := func(k, format string, args ...any) {
		if bad == nil || k < badKey {
			bad = baton.Errorf(baton.Invalid, "decode binary event", "header %q: "+format, append([]any{k}, args...)...)
			badKey = k
		}
	}
	r := event.AMQP.Reader()
	for k, v := range d.Headers {
		switch {
		case strings.HasPrefix(k, metaPrefix):
			s, ok := text(v)
			if !ok {
				refuse(k, "Baton's metadata must be a string, got %s", amqpType(v))
				continue
			}
			if meta == nil {
				meta = make(map[string]string, 4)
			}
			meta[k[len(metaPrefix):]] = s
		case raw:
			// In structured mode the body holds the attributes.
		default:
			name := event.AMQP.Attribute(k)
			if name == "" {
				continue // not an attribute Baton reads
			}
			s, err := attributeText(name, v)
			if err != nil {
				refuse(k, "%v", err)
				continue
			}
			r.Header(k, s)
		}
	}
	if raw && bad == nil {
		return bus.Structured(typ, d.MessageId, d.Body, meta)
	}
	if d.ContentType != "" {
		r.ContentType("content-type", d.ContentType)
	}
	var e baton.Event
	err := bad
	if err == nil {
		e, err = r.Event(d.Body)
		if err == nil {
			return bus.Delivery{Message: bus.Message{Event: e, Meta: meta}}
		}
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

// attributeText maps the value of the application property of attribute
// name to the text BinaryReader reads, as the CloudEvents AMQP binding
// types it: a string (or UTF-8 bytes, which some clients send for strings)
// for every attribute; for hops, an Integer, also an AMQP integer of any
// width; for time, a Timestamp, also an AMQP timestamp, written in RFC 3339.
// Anything else is refused with a reason naming the attribute and the AMQP
// type received: nil, a table or an array has no text that could stand for
// a subject or an id, and an integer id is refused rather than guessed at
// (the binding maps String to an AMQP string, and 42, "42" and "042" would
// otherwise be three spellings of one id or two).
func attributeText(name string, v any) (string, error) {
	if s, ok := text(v); ok {
		return s, nil
	}
	switch name {
	case "hops":
		if n, ok := integer(v); ok {
			return strconv.FormatInt(n, 10), nil
		}
		return "", fmt.Errorf("hops must be an integer or a string of one, got %s", amqpType(v))
	case "time":
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.RFC3339Nano), nil
		}
		return "", fmt.Errorf("time must be an AMQP timestamp or an RFC 3339 string, got %s", amqpType(v))
	}
	return "", fmt.Errorf("%s must be a string, got %s", name, amqpType(v))
}

func text(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	}
	return "", false
}

func integer(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// amqpType names the type of a decoded field value, for errors.
func amqpType(v any) string {
	switch v.(type) {
	case nil:
		return "nil (an AMQP void)"
	case bool:
		return "a boolean"
	case amqp.Decimal:
		return "a decimal"
	case time.Time:
		return "a timestamp"
	case amqp.Table:
		return "a table"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v) // the numbers: int64, float64, ...
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
