package rabbitbus

import (
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
)

// headerValue is one of the AMQP types a plain client can give an
// application property, chosen by kind, for the fuzzer to vary.
func headerValue(kind byte, s string, n int64) any {
	switch kind % 10 {
	case 0:
		return s
	case 1:
		return []byte(s)
	case 2:
		return n
	case 3:
		return int32(n)
	case 4:
		return nil
	case 5:
		return amqp.Table{s: n}
	case 6:
		return []any{s, n}
	case 7:
		return time.Unix(n%(1<<40), 0)
	case 8:
		return float64(n) / 2
	}
	return n%2 == 0
}

// FuzzDecode feeds the AMQP decoder the deliveries a plain client could
// send: any body and content type, and attributes and metadata of every
// AMQP type. It never panics; a delivery it refuses carries a coded
// invalid error and its body; one it reads is a valid event that encode
// and decode give back unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"n":1}`), "application/json", "1.0", "evt-1", "ORDER-1", "2030-01-02T03:04:05Z", int64(3), []byte{0, 0, 0, 0, 2, 0})
	f.Add([]byte(`{"n":1}`), "", "1.0", "evt-1", "", "", int64(1893553445), []byte{0, 4, 5, 7, 3, 6})
	f.Add([]byte("hello"), "text/plain", "0.3", "evt-2", "s", "yesterday", int64(-1), []byte{1, 1, 1, 1, 0, 0})
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"a.v1"}`), "application/cloudevents+json", "1.0", "x", "", "", int64(0), []byte{})
	f.Add([]byte("\xff\xfe"), "application/octet-stream", "1.0", "evt-3", "", "", int64(42), []byte{2, 0, 0, 0, 8, 9})
	f.Fuzz(func(t *testing.T, body []byte, contentType, spec, id, subject, at string, n int64, kinds []byte) {
		kind := func(i int) byte {
			if i < len(kinds) {
				return kinds[i]
			}
			return 0
		}
		h := amqp.Table{
			"cloudEvents_specversion": headerValue(kind(0), spec, n),
			"cloudEvents_id":          headerValue(kind(1), id, n),
			"cloudEvents_source":      "shop",
			"cloudEvents_type":        "order.placed.v1",
			"cloudEvents_subject":     headerValue(kind(2), subject, n),
			"cloudEvents_time":        headerValue(kind(3), at, n),
			"cloudEvents_hops":        headerValue(kind(4), at, n),
			"baton-replyto":           headerValue(kind(5), subject, n),
		}
		d := decode(&amqp.Delivery{Headers: h, ContentType: contentType, Body: body, Exchange: "ns", RoutingKey: "order.placed.v1"}, "ns")
		if d.Err != nil {
			if baton.ErrorCode(d.Err) != baton.Invalid {
				t.Fatalf("refused with %v, which is not coded invalid", d.Err)
			}
			if d.Raw == nil || d.Type == "" {
				t.Fatalf("refused with %v but without the body or type to dead-letter it by", d.Err)
			}
			return
		}
		p := encode(d.Message)
		again := decode(&amqp.Delivery{Headers: p.Headers, ContentType: p.ContentType, Body: p.Body, Type: p.Type, MessageId: p.MessageId}, "ns")
		if again.Err != nil {
			t.Fatalf("read %+v, which encoded reads as %v", d.Event, again.Err)
		}
		a, b := d.Message, again.Message
		if !a.Time.Equal(b.Time) {
			t.Fatalf("time %v became %v", a.Time, b.Time)
		}
		a.Time, b.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("read %+v\nencoded and read again %+v", a, b)
		}
	})
}
