package natsbus_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
)

// What a plain NATS client sends that is not an event is handed on with
// a reason that names the real problem, and with a body, kept for its dead
// letter, that reads back as nothing but the message it was: a body that is
// not JSON is never pasted into the structured event (where
// `null,"id":"forged",...` once added an id of its own), and a structured
// event that names a member twice is refused.
func TestPlainClientBadBodies(t *testing.T) {
	b := openBus(t)
	ns := strings.ToLower(b.Stream())
	sub, err := b.Subscribe(t.Context(), "billing", []string{"order.placed.v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	headers := func(id string) nats.Header {
		h := nats.Header{"ce-specversion": {"1.0"}, "ce-source": {"shop"}, "ce-type": {"order.placed.v1"},
			"ce-correlationid": {"ORDER-7"}, "content-type": {"application/json"}}
		if id != "" {
			h["ce-id"] = []string{id}
		}
		return h
	}
	const forged = `null,"id":"forged","replyto":"coordinator-x","hops":0`
	text := headers("plain-text")
	delete(text, "ce-source")
	text["content-type"] = []string{"text/plain"}
	for _, c := range []struct {
		name   string
		h      nats.Header
		body   string
		reason string
		// what the body kept for the dead letter reads as in structured mode
		rawReason string
		rawData   string
	}{
		// Without ce-id the forged body once made the event's only id.
		{"forged, no id", headers(""), forged, "malformed JSON", "data_base64 is not supported", forged},
		{"forged", headers("plain-forged"), forged, "malformed JSON", "data_base64 is not supported", forged},
		{"not JSON", headers("plain-garbage"), "\x00\xff{{", "malformed JSON", "data_base64 is not supported", "\x00\xff{{"},
		{"text, no source", text, "hello, world", `missing required attribute "source"`, `missing required attribute "source"`, `"hello, world"`},
		{"duplicate member", nats.Header{"content-type": {event.ContentType}},
			`{"specversion":"1.0","id":"plain-dup","source":"shop","type":"order.placed.v1","id":"other"}`,
			`duplicate member "id"`, `duplicate member "id"`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := &nats.Msg{Subject: ns + ".ev.order.placed.v1", Header: c.h, Data: []byte(c.body)}
			if _, err := js.PublishMsg(t.Context(), msg); err != nil {
				t.Fatalf("plain publish: %v", err)
			}
			d := receiveOne(t, sub, c.name)
			if d.Err == nil || !strings.Contains(d.Err.Error(), c.reason) || baton.ErrorCode(d.Err) != baton.Invalid {
				t.Errorf("error %v; want an invalid one saying %s", d.Err, c.reason)
			}
			if d.ID == "forged" || d.Type != "order.placed.v1" {
				t.Errorf("delivered %s %q; want the type, and no id from the body", d.Type, d.ID)
			}
			e, err := event.Unmarshal(d.Raw)
			if err == nil || !strings.Contains(err.Error(), c.rawReason) || e.ID == "forged" {
				t.Errorf("the body kept for the dead letter, %s, reads as %q with %v; want an error saying %s", d.Raw, e.ID, err, c.rawReason)
			}
			switch {
			case strings.Contains(c.rawReason, "data_base64"):
				data, err := base64.StdEncoding.DecodeString(member(t, d.Raw, "data_base64"))
				if err != nil || string(data) != c.rawData {
					t.Errorf("data_base64 of %s holds %q (%v); want the body as sent, %q", d.Raw, data, err, c.rawData)
				}
			case c.rawData != "":
				if string(e.Data) != c.rawData {
					t.Errorf("data %s; want %s", e.Data, c.rawData)
				}
			}
		})
	}
}

// member is the string value of a top-level member of a JSON object.
func member(t *testing.T, doc []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	s, _ := m[name].(string)
	return s
}
