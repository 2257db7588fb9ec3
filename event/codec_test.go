package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	cases := []struct {
		name string
		edit func(*baton.Event)
	}{
		{"all attributes", func(*baton.Event) {}},
		{"minimal", func(e *baton.Event) {
			*e = baton.Event{ID: "1", Source: "s", SpecVersion: "1.0", Type: "a.v1"}
		}},
		{"unicode", func(e *baton.Event) {
			e.Subject = "Bestellung für Zoë – 注文 🍕"
			e.Source = "/dienste/bestellungen/ü"
			e.Data = json.RawMessage(`{"name":"Zoë 🍕","escaped":"\u00e9\ud83c\udf55"}`)
		}},
		{"quotes and backslashes", func(e *baton.Event) {
			e.Subject = `say "hi" \ and \"bye\"`
			e.Source = `C:\orders\"x"`
			e.Data = json.RawMessage(`"a \"quoted\" \\ string"`)
		}},
		{"control characters in data", func(e *baton.Event) {
			e.Data = json.RawMessage(`{"note":"line1\nline2\ttab\u0000nul\u001f\r\b\f"}`)
		}},
		{"line separators and html", func(e *baton.Event) {
			e.Subject = "a\u2028b\u2029c <script>&</script>"
		}},
		{"empty data", func(e *baton.Event) { e.Data = nil }},
		{"empty non-nil data", func(e *baton.Event) { e.Data = json.RawMessage{} }},
		{"data string", func(e *baton.Event) { e.Data = json.RawMessage(`"hello"`) }},
		{"data number", func(e *baton.Event) { e.Data = json.RawMessage(`-12.5e3`) }},
		{"data zero", func(e *baton.Event) { e.Data = json.RawMessage(`0`) }},
		{"data true", func(e *baton.Event) { e.Data = json.RawMessage(`true`) }},
		{"data null", func(e *baton.Event) { e.Data = json.RawMessage(`null`) }},
		{"data array", func(e *baton.Event) { e.Data = json.RawMessage(`[1,"two",[3],{"four":4}]`) }},
		{"data with whitespace", func(e *baton.Event) { e.Data = json.RawMessage("{\n  \"a\" : [ 1 , 2 ]\n}") }},
		{"deep data", func(e *baton.Event) {
			e.Data = json.RawMessage(strings.Repeat("[", 500) + strings.Repeat("]", 500))
		}},
		{"time with offset", func(e *baton.Event) { e.Time = time.Date(2025, 1, 2, 3, 4, 5, 6, berlin) }},
		{"time without fraction", func(e *baton.Event) { e.Time = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }},
		{"zero time", func(e *baton.Event) { e.Time = time.Time{} }},
		{"zero hops", func(e *baton.Event) { e.Hops = 0 }},
		{"large hops", func(e *baton.Event) { e.Hops = 1<<31 + 5 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := sample()
			c.edit(&e)
			b, err := Marshal(e)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !json.Valid(b) {
				t.Fatalf("Marshal wrote invalid JSON: %s", b)
			}
			want := e
			if len(want.Data) == 0 {
				want.Data = nil
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			sameEvent(t, got, want)

			// encoding/json reads the same event from the same bytes.
			var std baton.Event
			if err := json.Unmarshal(b, &std); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
			sameEvent(t, std, want)
		})
	}
}

func TestMarshalShape(t *testing.T) {
	t.Parallel()
	e := baton.Event{
		ID: "1", Source: "/s", Type: "order.placed.v1", Time: time.Date(2025, 1, 2, 4, 4, 5, 0, time.FixedZone("", 3600)),
		Hops: 2, Data: json.RawMessage(`{"a":1}`),
	}
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	// An empty specversion is written as 1.0, time in UTC, empty
	// attributes left out.
	want := `{"specversion":"1.0","id":"1","source":"/s","type":"order.placed.v1","time":"2025-01-02T03:04:05Z","hops":2,"data":{"a":1}}`
	if string(b) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", b, want)
	}
}

func TestMarshalRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(*baton.Event)
		want string
	}{
		{"no source", func(e *baton.Event) { e.Source = "" }, `missing required attribute "source"`},
		{"control character in subject", func(e *baton.Event) { e.Subject = "a\x01" }, `invalid attribute "subject"`},
		{"data not JSON", func(e *baton.Event) { e.Data = json.RawMessage(`{"a":`) }, "is not valid JSON"},
		{"data two values", func(e *baton.Event) { e.Data = json.RawMessage(`1 2`) }, "is not valid JSON"},
		{"data bare word", func(e *baton.Event) { e.Data = json.RawMessage(`hello`) }, "is not valid JSON"},
		{"year out of range", func(e *baton.Event) { e.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, `invalid attribute "time"`},
	}
	for _, c := range cases {
		e := sample()
		c.edit(&e)
		_, err := Marshal(e)
		wantInvalid(t, err, c.want)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	t.Parallel()
	valid := `"specversion":"1.0","id":"1","source":"s","type":"a.v1"`
	cases := []struct {
		in   string
		want string
	}{
		{``, "malformed JSON: unexpected end of JSON input"},
		{`   `, "malformed JSON: unexpected end of JSON input"},
		{`{`, "malformed JSON: unexpected end"},
		{`{"id":"1",}`, "malformed JSON: invalid character '}' looking for beginning of object key string"},
		{`{` + valid + `}x`, "malformed JSON: invalid character 'x' after top-level value"},
		{`{` + valid + `} {}`, "malformed JSON: invalid character '{' after top-level value"},
		{`[]`, "malformed JSON: the event is not a JSON object"},
		{`null`, "malformed JSON: the event is not a JSON object"},
		{`"x"`, "malformed JSON: the event is not a JSON object"},
		{`{` + valid + `,"data":{"a":1,}}`, "malformed JSON"},
		{`{` + valid + `,"data":[1 2]}`, "malformed JSON: invalid character '2' after array element"},
		{`{` + valid + `,"data":01}`, "malformed JSON"},
		{`{` + valid + `,"data":1.}`, "malformed JSON"},
		{`{` + valid + `,"data":-}`, "malformed JSON"},
		{`{` + valid + `,"data":tru}`, "malformed JSON"},
		{`{` + valid + `,"data":"a` + "\n" + `"}`, "malformed JSON"},
		{`{` + valid + `,"data":"\x"}`, "malformed JSON"},
		{`{` + valid + `,"data":"\u12"}`, "malformed JSON"},
		{`{` + valid + `,"x-ext":{"a" 1}}`, "malformed JSON"},
		{`{` + valid + `,"data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "malformed JSON: invalid character '[' exceeded max depth"},
		{`{` + valid + `,"data":{'a':1}}`, "malformed JSON"},
		{`{"specversion":"1.0","source":"s","type":"a.v1"}`, `missing required attribute "id"`},
		{`{"specversion":"1.0","id":"1","type":"a.v1"}`, `missing required attribute "source"`},
		{`{"id":"1","source":"s","type":"a.v1"}`, `missing required attribute "specversion"`},
		{`{"specversion":"1.0","id":"1","source":"s"}`, `missing required attribute "type"`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"order.placed"}`, `invalid attribute "type"`},
		{`{"specversion":"1.0","id":null,"source":"s","type":"a.v1"}`, `missing required attribute "id"`},
		{`{"specversion":"1.0","ID":"1","source":"s","type":"a.v1"}`, `missing required attribute "id"`},
		{`{"specversion":"1.0","id":5,"source":"s","type":"a.v1"}`, `invalid attribute "id": want a string, got a number`},
		{`{` + valid + `,"subject":{}}`, `invalid attribute "subject": want a string, got an object`},
		{`{` + valid + `,"subject":true}`, `invalid attribute "subject": want a string, got a boolean`},
		{`{` + valid + `,"subject":"a\nb"}`, `invalid attribute "subject": control character U+000A`},
		{`{` + valid + `,"time":"yesterday"}`, `invalid attribute "time": "yesterday" is not an RFC 3339 time`},
		{`{` + valid + `,"time":"2025-01-02 03:04:05Z"}`, `invalid attribute "time"`},
		{`{` + valid + `,"time":"\u0032025-01-02T03:04:05Z"}`, `invalid attribute "time"`},
		{`{` + valid + `,"time":12}`, `invalid attribute "time": want an RFC 3339 string, got a number`},
		{`{` + valid + `,"hops":1.5}`, `invalid attribute "hops": want an integer, got 1.5`},
		{`{` + valid + `,"hops":1e2}`, `invalid attribute "hops"`},
		{`{` + valid + `,"hops":"2"}`, `invalid attribute "hops"`},
		{`{` + valid + `,"hops":99999999999999999999}`, `invalid attribute "hops"`},
		{`{` + valid + `,"hops":-1}`, `invalid attribute "hops": -1 is negative`},
		{`{` + valid + `,"hops":"x","hops":1}`, `invalid attribute "hops"`},
		{`{` + valid + `,"data_base64":"aGk="}`, "data_base64 is not supported"},
	}
	for _, c := range cases {
		_, err := Unmarshal([]byte(c.in))
		wantInvalid(t, err, c.want)
		if _, stdErr := reference([]byte(c.in)); stdErr == nil {
			t.Errorf("the reference decoder accepts %.80q, which Unmarshal refuses with %v", c.in, err)
		}
	}
}

// A member named twice is refused, naming it, though encoding/json would
// keep the last: a sender could show one id to a filter that keeps the
// first and another to Baton. Members inside data are data.
func TestUnmarshalRefusesDuplicateMembers(t *testing.T) {
	t.Parallel()
	valid := `"specversion":"1.0","id":"1","source":"s","type":"a.v1"`
	for _, c := range []struct{ in, key string }{
		{`{` + valid + `,"id":"forged"}`, "id"},
		{`{` + valid + `,"data":null,"id":"forged","hops":0}`, "id"},
		{`{` + valid + `,"subject":"k","subject":null}`, "subject"},
		{`{` + valid + `,"\u0074ype":"b.v1"}`, "type"},
		{`{` + valid + `,"myext":1,"myext":2}`, "myext"},
		{`{` + valid + `,"data":1,"data":2}`, "data"},
	} {
		_, err := Unmarshal([]byte(c.in))
		wantInvalid(t, err, fmt.Sprintf("duplicate member %q", c.key))
	}
	e, err := Unmarshal([]byte(`{` + valid + `,"data":{"a":1,"a":2}}`))
	if err != nil || string(e.Data) != `{"a":1,"a":2}` {
		t.Errorf("data with a repeated member: %s, %v; want it as it came", e.Data, err)
	}
}

func TestUnmarshalLenient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want baton.Event
	}{
		{ // whitespace everywhere, unknown extensions and escapes in names
			" \n{ \"specversion\" : \"1.0\" ,\t\"\\u0069d\":\"x\\\"y\", \"source\":\"s\",\"type\":\"a.v1\"," +
				"\"myext\":{\"deep\":[1,2,{\"x\":null}]},\"hops\":-0, \"data\" : [ 1 ] }\r\n",
			baton.Event{SpecVersion: "1.0", ID: `x"y`, Source: "s", Type: "a.v1", Data: json.RawMessage(`[ 1 ]`)},
		},
		{ // null leaves attributes unset
			`{"specversion":"1.0","id":"2","source":"s","type":"a.v1","subject":null,"time":null,"hops":null,"data":null}`,
			baton.Event{SpecVersion: "1.0", ID: "2", Source: "s", Type: "a.v1", Data: json.RawMessage(`null`)},
		},
		{ // invalid UTF-8 in a string becomes U+FFFD, as encoding/json does
			"{\"specversion\":\"1.0\",\"id\":\"a\xffb\",\"source\":\"s\",\"type\":\"a.v1\"}",
			baton.Event{SpecVersion: "1.0", ID: "a\ufffdb", Source: "s", Type: "a.v1"},
		},
		{ // time with an offset
			`{"specversion":"1.0","id":"1","source":"s","type":"a.v1","time":"2025-01-02T04:04:05.5+01:00"}`,
			baton.Event{SpecVersion: "1.0", ID: "1", Source: "s", Type: "a.v1", Time: time.Date(2025, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		},
	}
	for _, c := range cases {
		got, err := Unmarshal([]byte(c.in))
		if err != nil {
			t.Errorf("Unmarshal(%q): %v", c.in, err)
			continue
		}
		sameEvent(t, got, c.want)
	}
}

func TestUnmarshalCopiesData(t *testing.T) {
	t.Parallel()
	b, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	e, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'x'
	}
	sameEvent(t, e, sample())
}

// reference decodes an event the slow way, with encoding/json doing every
// piece of JSON work, following the rules Unmarshal documents: names match
// exactly, a member named twice is refused, null changes nothing.
func reference(b []byte) (baton.Event, error) {
	var e baton.Event
	if !json.Valid(b) {
		return e, fmt.Errorf("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return e, err
	}
	if tok != json.Delim('{') {
		return e, fmt.Errorf("not an object")
	}
	strs := map[string]*string{
		"id": &e.ID, "source": &e.Source, "specversion": &e.SpecVersion, "type": &e.Type,
		"subject": &e.Subject, "datacontenttype": &e.DataContentType, "dataschema": &e.DataSchema,
		"correlationid": &e.CorrelationID, "causationid": &e.CausationID, "traceparent": &e.TraceParent,
		"tracestate": &e.TraceState,
	}
	base64 := false
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return e, err
		}
		key := tok.(string)
		if seen[key] {
			return e, fmt.Errorf("duplicate member %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return e, err
		}
		var target any
		switch {
		case strs[key] != nil:
			target = strs[key]
		case key == "time":
			target = &e.Time
		case key == "hops":
			target = &e.Hops
		case key == "data":
			e.Data = append(json.RawMessage(nil), raw...)
		case key == "data_base64":
			base64 = true
		}
		if target != nil {
			if err := json.Unmarshal(raw, target); err != nil {
				return e, err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return e, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return e, fmt.Errorf("data after the object")
	}
	if base64 {
		return e, fmt.Errorf("data_base64")
	}
	return e, Validate(e)
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := Marshal(sample())
	f.Add(good)
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"a.v1"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"\u00e9\"","source":"s","type":"a.v1","data":"x","hops":2,"time":"2025-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","id":null,"source":"s","type":"a.v1","data":[{"a":[true,false,null,-1.5e3]}]}`))
	f.Add([]byte("{\"specversion\":\"1.0\",\"id\":\"\xff\",\"source\":\"s\",\"type\":\"a.v1\",\"x\":{}}"))
	f.Add([]byte(`{"data_base64":"", "hops": 1.0}`))
	f.Add([]byte(`[{"id":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Unmarshal(b)
		want, refErr := reference(b)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Unmarshal(%q): error %v, reference error %v", b, err, refErr)
		}
		if err != nil {
			if baton.ErrorCode(err) != baton.Invalid {
				t.Fatalf("Unmarshal(%q): error %v is not invalid", b, err)
			}
			return
		}
		sameEvent(t, got, want)
		out, err := Marshal(got)
		if err != nil {
			t.Fatalf("Marshal of decoded %q: %v", b, err)
		}
		again, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(Unmarshal(%q))): %v", b, err)
		}
		sameEvent(t, again, got)
	})
}

func TestUnmarshalErrorKeepsEvent(t *testing.T) {
	t.Parallel()
	// Invalid but well-formed: the event comes back for the dead letter.
	e, err := Unmarshal([]byte(`{"specversion":"1.0","id":"7","source":"s","type":"order","correlationid":"ORDER-1"}`))
	wantInvalid(t, err, `invalid attribute "type"`)
	if e.ID != "7" || e.CorrelationID != "ORDER-1" {
		t.Errorf("got %+v, want the decoded event", e)
	}
	// Malformed: nothing comes back.
	e, err = Unmarshal([]byte(`{"specversion":"1.0","id":"7","hops":3,"source":`))
	wantInvalid(t, err, "malformed JSON")
	if e.ID != "" || e.Hops != 0 {
		t.Errorf("got %+v, want the zero event", e)
	}
}
