package natsbus

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
)

// FuzzDecode feeds the NATS decoder the messages a plain client could send:
// any body and content type, and any attribute headers, spelt in any case.
// It never panics; a message it refuses carries a coded invalid error, and
// the structured body kept for its dead letter holds no member that a
// header does not name; one it reads is a valid event that encode and decode give back
// unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"n":1}`), "application/json", "ce-id", "evt-1", "ce-hops", "3", "ce-time", "2030-01-02T03:04:05Z")
	f.Add([]byte(`null,"id":"forged","replyto":"coordinator-x","hops":0`), "application/json", "ce-subject", "s", "Ce-Id", "x", "ce-data", "1")
	f.Add([]byte("hello"), "text/plain", "ce-id", "evt-2", "ce-specversion", "0.3", "baton-replyto", "c")
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"a.v1","id":"y"}`), event.ContentType, "", "", "", "", "", "")
	f.Add([]byte("\xff"), "application/octet-stream", "baton-raw", "1", "ce-id", "evt-3", "CE-ID", "evt-4")
	f.Fuzz(func(t *testing.T, body []byte, contentType, k1, v1, k2, v2, k3, v3 string) {
		h := nats.Header{"ce-specversion": {"1.0"}, "ce-source": {"shop"}, "ce-type": {"order.placed.v1"}}
		if contentType != "" {
			h["content-type"] = []string{contentType}
		}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			if kv[0] != "" {
				h[kv[0]] = append(h[kv[0]], kv[1])
			}
		}
		d := decode("order.placed.v1", h, body)
		if d.Err != nil {
			if baton.ErrorCode(d.Err) != baton.Invalid {
				t.Fatalf("refused with %v, which is not coded invalid", d.Err)
			}
			if d.Type == "" {
				t.Fatalf("refused with %v, without a type to dead-letter it by", d.Err)
			}
			if bytes.Equal(d.Raw, body) {
				return // structured mode: kept as it came
			}
			// In binary mode the body kept for the dead letter is one JSON
			// object whose members all come from a header or are the data:
			// nothing in the message's body adds members of its own.
			var members map[string]json.RawMessage
			if err := json.Unmarshal(d.Raw, &members); err != nil {
				t.Fatalf("refused with %v, but the body kept for the dead letter, %q, is not a JSON object: %v", d.Err, d.Raw, err)
			}
			for name := range members {
				if name != "data" && name != "data_base64" && name != "datacontenttype" && !fromHeader(h, name) {
					t.Fatalf("the body kept for the dead letter, %q, has a member %q that no header names", d.Raw, name)
				}
			}
			return
		}
		m := encode("ns.ev."+d.Type, d.Message)
		again := decode(d.Type, m.Header, m.Data)
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

func fromHeader(h nats.Header, name string) bool {
	for k := range h {
		if strings.EqualFold(k, event.NATSPrefix+name) {
			return true
		}
	}
	return false
}
