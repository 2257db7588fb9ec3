package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// toBinary and fromBinary map an event through the binding of prefix the
// way a transport does, with a map standing for the protocol's headers.
func toBinary(e baton.Event, prefix string) (map[string]string, []byte) {
	h := map[string]string{}
	bindingOf(prefix).Headers(&e, func(k, v string) { h[k] = v })
	if e.DataContentType != "" {
		h["content-type"] = e.DataContentType
	}
	return h, Body(&e)
}

func fromBinary(headers map[string]string, prefix string, body []byte) (baton.Event, error) {
	r := bindingOf(prefix).Reader()
	for k, v := range headers {
		r.Header(k, v)
	}
	return r.Event(body)
}

func bindingOf(prefix string) *Binding {
	switch prefix {
	case AMQPPrefix:
		return AMQP
	case NATSPrefix:
		return NATS
	}
	return newBinding(prefix, true)
}

func TestBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(*baton.Event)
	}{
		{"all attributes", func(*baton.Event) {}},
		{"minimal", func(e *baton.Event) { *e = baton.Event{ID: "1", Source: "s", SpecVersion: "1.0", Type: "a.v1"} }},
		{"unicode and quotes", func(e *baton.Event) { e.Subject = `Zoë "🍕" \ 注文` }},
		{"no content type", func(e *baton.Event) { e.DataContentType = "" }},
		{"json string data", func(e *baton.Event) { e.Data = json.RawMessage(`"hello"`) }},
		{"json with parameters", func(e *baton.Event) { e.DataContentType = "application/json; charset=utf-8" }},
		{"+json type", func(e *baton.Event) { e.DataContentType = "application/vnd.orders+json" }},
		{"text data", func(e *baton.Event) {
			e.DataContentType = "text/plain"
			e.Data = json.RawMessage(`"line one\nline \"two\" é"`)
		}},
		{"no data", func(e *baton.Event) { e.Data = nil }},
		{"time with offset", func(e *baton.Event) { e.Time = time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", -7200)) }},
	}
	for _, prefix := range []string{AMQPPrefix, NATSPrefix} {
		for _, c := range cases {
			t.Run(prefix+c.name, func(t *testing.T) {
				t.Parallel()
				e := sample()
				c.edit(&e)
				headers, body := toBinary(e, prefix)
				for k := range headers {
					if k != "content-type" && !strings.HasPrefix(k, prefix) {
						t.Errorf("header %q lacks prefix %q", k, prefix)
					}
				}
				got, err := fromBinary(headers, prefix, body)
				if err != nil {
					t.Fatalf("fromBinary(%v, %q): %v", headers, body, err)
				}
				sameEvent(t, got, e)
			})
		}
	}
}

func TestToBinary(t *testing.T) {
	t.Parallel()
	e := sample()
	e.Time = time.Date(2025, 1, 2, 4, 4, 5, 120000000, time.FixedZone("", 3600))
	headers, body := toBinary(e, NATSPrefix)
	want := map[string]string{
		"ce-id":            e.ID,
		"ce-source":        e.Source,
		"ce-specversion":   "1.0",
		"ce-type":          e.Type,
		"ce-subject":       e.Subject,
		"ce-time":          "2025-01-02T03:04:05.12Z",
		"ce-dataschema":    e.DataSchema,
		"ce-correlationid": e.CorrelationID,
		"ce-causationid":   e.CausationID,
		"ce-traceparent":   e.TraceParent,
		"ce-tracestate":    e.TraceState,
		"ce-hops":          "3",
		"content-type":     "application/json",
	}
	if len(headers) != len(want) {
		t.Errorf("got %d headers, want %d: %v", len(headers), len(want), headers)
	}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("header %q = %q, want %q", k, headers[k], v)
		}
	}
	if !bytes.Equal(body, e.Data) {
		t.Errorf("body = %s, want %s", body, e.Data)
	}

	// Empty attributes stay out; an empty specversion is sent as 1.0.
	headers, body = toBinary(baton.Event{ID: "1", Source: "s", Type: "a.v1"}, AMQPPrefix)
	want = map[string]string{"cloudEvents_id": "1", "cloudEvents_source": "s", "cloudEvents_type": "a.v1", "cloudEvents_specversion": "1.0"}
	if len(headers) != len(want) || body != nil {
		t.Errorf("minimal: got %v %q, want %v and no body", headers, body, want)
	}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("header %q = %q, want %q", k, headers[k], v)
		}
	}

	// Text goes as its bytes.
	e.DataContentType = "text/plain"
	e.Data = json.RawMessage(`"a\nb"`)
	if _, body := toBinary(e, "x-"); string(body) != "a\nb" {
		t.Errorf("text body = %q", body)
	}
}

func TestFromBinaryHeaderCase(t *testing.T) {
	t.Parallel()
	headers := map[string]string{
		"CE-ID": "1", "Ce-Source": "s", "ce-SpecVersion": "1.0", "Ce-Type": "a.v1", "Ce-Hops": "2",
		"Content-Type": "application/json", "X-Other": "ignored", "ce-myext": "ignored",
	}
	got, err := fromBinary(headers, NATSPrefix, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, got, baton.Event{ID: "1", Source: "s", SpecVersion: "1.0", Type: "a.v1", Hops: 2,
		DataContentType: "application/json", Data: json.RawMessage(`{"a":1}`)})

	// AMQP property names are case-sensitive.
	_, err = fromBinary(map[string]string{
		"CloudEvents_id": "1", "cloudEvents_source": "s", "cloudEvents_specversion": "1.0", "cloudEvents_type": "a.v1",
	}, AMQPPrefix, nil)
	wantInvalid(t, err, `missing required attribute "id"`)
}

func TestFromBinaryErrors(t *testing.T) {
	t.Parallel()
	base := func() map[string]string {
		return map[string]string{"ce-id": "1", "ce-source": "s", "ce-specversion": "1.0", "ce-type": "a.v1"}
	}
	cases := []struct {
		name string
		edit func(map[string]string)
		body string
		want string
	}{
		{"no type", func(h map[string]string) { delete(h, "ce-type") }, "", `missing required attribute "type"`},
		{"no specversion", func(h map[string]string) { delete(h, "ce-specversion") }, "", `missing required attribute "specversion"`},
		{"bad time", func(h map[string]string) { h["ce-time"] = "noon" }, "", `header "ce-time": "noon" is not an RFC 3339 time`},
		{"bad hops", func(h map[string]string) { h["ce-hops"] = "1.5" }, "", `header "ce-hops": "1.5" is not an integer`},
		{"negative hops", func(h map[string]string) { h["ce-hops"] = "-2" }, "", `invalid attribute "hops"`},
		{"repeated attribute", func(h map[string]string) { h["CE-ID"] = "2" }, "", `both set attribute "id"`},
		{"repeated content type", func(h map[string]string) {
			h["content-type"] = "application/json"
			h["Content-Type"] = "text/plain"
		}, "", `both set attribute "datacontenttype"`},
		{"body not JSON", func(map[string]string) {}, `{"a":`, "is not valid JSON"},
		{"JSON type, body not JSON", func(h map[string]string) { h["content-type"] = "application/json" }, `hello`, "is not valid JSON"},
		{"binary body", func(h map[string]string) { h["content-type"] = "application/octet-stream" }, "\xff\xfe", "is not UTF-8 text"},
		{"control character", func(h map[string]string) { h["ce-subject"] = "a\r\nb" }, "", `invalid attribute "subject"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := base()
			c.edit(h)
			_, err := fromBinary(h, NATSPrefix, []byte(c.body))
			wantInvalid(t, err, c.want)
		})
	}
}

func TestFromBinaryText(t *testing.T) {
	t.Parallel()
	h := map[string]string{"ce-id": "1", "ce-source": "s", "ce-specversion": "1.0", "ce-type": "a.v1", "content-type": "text/plain; charset=utf-8"}
	body := []byte("héllo \"world\"\n")
	e, err := fromBinary(h, NATSPrefix, body)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(e.Data, &s); err != nil || s != string(body) {
		t.Errorf("data = %s (%v), want the JSON string of %q", e.Data, err, body)
	}
	body[0] = 'X'
	if json.Unmarshal(e.Data, &s); s[0] != 'h' {
		t.Error("data aliases the body")
	}
}

func TestIsJSONType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]bool{
		"": true, "application/json": true, "Application/JSON": true, "application/json; charset=utf-8": true,
		"text/json": true, "application/cloudevents+json": true, " application/ld+json ": true,
		"text/plain": false, "application/xml": false, "application/octet-stream": false, "json": false,
	} {
		if got := IsJSONType(ct); got != want {
			t.Errorf("IsJSONType(%q) = %v, want %v", ct, got, want)
		}
	}
}
