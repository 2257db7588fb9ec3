package event

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/batonhq/baton"
)

// FuzzBinary reads binary mode, as both bindings do, from any headers and
// body. It never panics; what it refuses is a coded invalid error; what it
// reads is a valid event that Headers and Body write back as the same
// event, in both bindings, and that structured mode carries unchanged.
func FuzzBinary(f *testing.F) {
	f.Add(true, "ce-id", "1", "ce-time", "2025-01-02T03:04:05Z", "ce-hops", "2", "application/json", []byte(`{"a":1}`))
	f.Add(false, "cloudEvents_id", "1", "cloudEvents_subject", "k", "cloudEvents_hops", "x", "text/plain", []byte("hello"))
	f.Add(true, "CE-ID", "1", "ce-id", "2", "ce-specversion", "0.3", "", []byte(`null,"id":"forged"`))
	f.Add(false, "cloudEvents_id", "\x00", "cloudEvents_time", "2025-01-02 03:04:05", "content-type", "text/plain; charset=utf-8", "", []byte("\xff"))
	f.Fuzz(func(t *testing.T, nats bool, k1, v1, k2, v2, k3, v3, ct string, body []byte) {
		b, prefix := AMQP, AMQPPrefix
		if nats {
			b, prefix = NATS, NATSPrefix
		}
		r := b.Reader()
		r.Header(prefix+"specversion", "1.0")
		r.Header(prefix+"source", "shop")
		r.Header(prefix+"type", "order.placed.v1")
		r.Header(k1, v1)
		r.Header(k2, v2)
		r.Header(k3, v3)
		if ct != "" {
			r.ContentType("content-type", ct)
		}
		e, err := r.Event(body)
		if err != nil {
			if baton.ErrorCode(err) != baton.Invalid {
				t.Fatalf("refused with %v, which is not coded invalid", err)
			}
			return
		}
		for _, other := range []*Binding{AMQP, NATS} {
			again := other.Reader()
			other.Headers(&e, func(k, v string) { again.Header(k, v) })
			if e.DataContentType != "" {
				again.ContentType("content-type", e.DataContentType)
			}
			got, err := again.Event(Body(&e))
			if err != nil {
				t.Fatalf("read %+v, which written in binary mode reads as %v", e, err)
			}
			sameEvent(t, got, e)
		}
		s, err := Marshal(e)
		if err != nil {
			t.Fatalf("read %+v, which Marshal refuses: %v", e, err)
		}
		got, err := Unmarshal(s)
		if err != nil {
			t.Fatalf("read %+v, which in structured mode, %s, reads as %v", e, s, err)
		}
		// Structured mode keeps the data's JSON, not the whitespace
		// around it.
		got.Data, e.Data = compact(t, got.Data), compact(t, e.Data)
		sameEvent(t, got, e)
	})
}

func compact(t *testing.T, data []byte) []byte {
	if len(data) == 0 {
		return data
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatalf("data %q: %v", data, err)
	}
	return b.Bytes()
}
