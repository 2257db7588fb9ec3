package flow

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/jsonx"
)

// The run data is one JSON object that later steps read:
//
//	{"input": <run input>, "steps": {"<step>": <result>}, "last": {"type": ..., "data": ...}, "vars": {...}}
//
// Paths into it are dotted: "steps.charge.payment_id", "items.0.sku" (a
// numeric segment indexes an array). The functions below work on the raw
// bytes: a lookup runs for every step, and walking the bytes to the one value
// wanted, without decoding the rest, allocates nothing.

// Lookup returns the value at path in data, and whether there is one; the
// empty path is the whole document. A null value is found (as null). The
// value shares data's memory and must not be modified.
//
// data is expected to be JSON, as the run data always is: Lookup checks
// only the parts it walks through (a malformed object on the way hides the
// path), and never reads past data. Of duplicate keys the last counts, as
// with encoding/json.
func Lookup(data json.RawMessage, path string) (json.RawMessage, bool) {
	i := skipSpace(data, 0)
	if path == "" {
		end, ok := skipValue(data, i)
		if !ok {
			return nil, false
		}
		return data[i:end:end], true
	}
	var end int
	for {
		if i >= len(data) {
			return nil, false
		}
		seg, rest, more := strings.Cut(path, ".")
		if seg == "" {
			return nil, false
		}
		var ok bool
		switch data[i] {
		case '{':
			m, ok := member(data, i, seg)
			if !ok || m.start < 0 {
				return nil, false
			}
			i, end = m.start, m.end
		case '[':
			i, end, ok = element(data, i, seg)
			if !ok {
				return nil, false
			}
		default:
			return nil, false
		}
		if !more {
			return data[i:end:end], true
		}
		path = rest
	}
}

// Render replaces every {{path}} in tmpl (spaces inside the braces allowed)
// with the value at path in data: a string without its quotes, any other
// value as compact JSON. A path with no value is an Invalid error. Text
// without templates, and an unclosed "{{", come back unchanged.
//
// Values are inserted as they are, not escaped for their surroundings: a
// string put inside a JSON string must not need escaping there. URLs are
// rendered by RenderURL, which escapes.
func Render(tmpl string, data json.RawMessage) (string, error) {
	return render(tmpl, data, nil)
}

// render is Render; when place is set, each value goes through it before it
// is written: place gets the value's path, the value as Render would write
// it, the template text since the previous value, and the template text
// after this value.
func render(tmpl string, data json.RawMessage, place func(path, value, before, after string) (string, error)) (string, error) {
	open := strings.Index(tmpl, "{{")
	if open < 0 {
		return tmpl, nil
	}
	var out, val strings.Builder
	out.Grow(len(tmpl) + 32)
	for open >= 0 {
		closing := strings.Index(tmpl[open+2:], "}}")
		if closing < 0 {
			break
		}
		path := strings.TrimSpace(tmpl[open+2 : open+2+closing])
		v, ok := Lookup(data, path)
		if !ok {
			return "", baton.Errorf(baton.Invalid, "render", "{{%s}}: the run data has no %q", path, path)
		}
		before, after := tmpl[:open], tmpl[open+2+closing+2:]
		out.WriteString(before)
		w := &out
		if place != nil {
			val.Reset()
			w = &val
		}
		if err := writeValue(w, v); err != nil {
			return "", baton.Errorf(baton.Invalid, "render", "{{%s}}: %w", path, err)
		}
		if place != nil {
			s, err := place(path, val.String(), before, after)
			if err != nil {
				return "", baton.Errorf(baton.Invalid, "render", "{{%s}}: %w", path, err)
			}
			out.WriteString(s)
		}
		tmpl = after
		open = strings.Index(tmpl, "{{")
	}
	out.WriteString(tmpl)
	return out.String(), nil
}

// RenderURL renders a URL template as Render does, escaping each value for
// the part of the URL the template puts it in, so that no value changes the
// URL's structure:
//
//   - in the path, a value is one path segment or part of one
//     (url.PathEscape: a "/" becomes %2F);
//   - in the query or the fragment, a value is query-escaped
//     (url.QueryEscape: "&" and "=" become %26 and %3D);
//   - a value that begins the template ("{{input.url}}",
//     "{{vars.base}}/orders") is a URL or its beginning and is inserted as it
//     is, but may hold no "?" or "#" when the template goes on after it;
//   - a value in the host ("https://{{input.region}}.example.com/") may hold
//     no "/", "?", "#", "@" or "\".
//
// The part is decided by the template's own text, never by a value. A
// rendered URL whose path has a "." or ".." segment (written so, or
// percent-encoded) is refused, whichever part of the template made it.
func RenderURL(tmpl string, data json.RawMessage) (string, error) {
	part := urlOrigin
	authority := false // the template's text has passed the "//" of "scheme://"
	s, err := render(tmpl, data, func(path, v, before, after string) (string, error) {
		part, authority = urlPartAfter(part, authority, before)
		switch part {
		case urlPath:
			return url.PathEscape(v), nil
		case urlQuery:
			return url.QueryEscape(v), nil
		}
		if authority {
			if strings.ContainsAny(v, "/?#@\\") {
				return "", fmt.Errorf("the value %q in the URL's host has one of / ? # @ \\: refused", v)
			}
			return v, nil
		}
		if after != "" && strings.ContainsAny(v, "?#") {
			return "", fmt.Errorf("the value %q begins the URL and has a ? or #, which would make the rest of the template part of the query: refused", v)
		}
		return v, nil
	})
	if err != nil {
		return "", err
	}
	if u, perr := url.Parse(s); perr == nil {
		for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
			if seg, _ = url.PathUnescape(seg); seg == "." || seg == ".." {
				return "", baton.Errorf(baton.Invalid, "render", "url %s: the path has a %q segment, which would climb the path: refused", u.Redacted(), seg)
			}
		}
	}
	return s, nil
}

// The parts of a URL a template value can be in.
const (
	urlOrigin = iota // the scheme and the host, or a value that begins the URL
	urlPath
	urlQuery // the query or the fragment
)

// urlPartAfter is the part of the URL at the end of text, which follows
// part; authority says whether the text so far has passed "scheme://".
func urlPartAfter(part int, authority bool, text string) (int, bool) {
	for i := 0; i < len(text) && part != urlQuery; i++ {
		switch text[i] {
		case '?', '#':
			part = urlQuery
		case '/':
			if part != urlOrigin {
				continue
			}
			if !authority && i > 0 && text[i-1] == ':' && strings.HasPrefix(text[i:], "//") {
				authority = true
				i++
				continue
			}
			part = urlPath
		}
	}
	return part, authority
}

func writeValue(out *strings.Builder, v json.RawMessage) error {
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			out.Write(v[1 : len(v)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		out.WriteString(s)
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return err
		}
		out.Write(buf.Bytes())
	default: // a number, true, false or null: no spaces to take out
		out.Write(v)
	}
	return nil
}

// Holds reports whether the condition holds for the run data. eq and ne
// compare JSON values, numbers by value (1 equals 1.0); gt, gte, lt and lte
// compare numbers and are an Invalid error for anything else; in holds when
// the value equals an element of Value, a list; exists holds when the path
// has a value other than null. A path with no value holds only for ne.
func (c *Condition) Holds(data json.RawMessage) (bool, error) {
	var want any
	switch c.Op {
	case "exists":
	case "eq", "ne", "gt", "gte", "lt", "lte", "in":
		var err error
		if want, err = normalize(c.Value); err != nil {
			return false, c.errorf("value %v: %w", c.Value, err)
		}
		switch c.Op {
		case "gt", "gte", "lt", "lte":
			if _, ok := want.(json.Number); !ok {
				return false, c.errorf("value %v is %s, not a number", c.Value, kindOf(want))
			}
		case "in":
			if _, ok := want.([]any); !ok {
				return false, c.errorf("value %v is %s, not a list", c.Value, kindOf(want))
			}
		}
	default:
		return false, c.errorf("op %q: want eq, ne, gt, gte, lt, lte, in or exists", c.Op)
	}

	raw, found := Lookup(data, c.Path)
	if !found {
		return c.Op == "ne", nil
	}
	if c.Op == "exists" {
		return string(raw) != "null", nil
	}
	got, err := decodeValue(raw)
	if err != nil {
		return false, c.errorf("the value at %s: %w", c.Path, err)
	}
	switch c.Op {
	case "eq":
		return jsonEqual(got, want), nil
	case "ne":
		return !jsonEqual(got, want), nil
	case "in":
		for _, w := range want.([]any) {
			if jsonEqual(got, w) {
				return true, nil
			}
		}
		return false, nil
	}
	n, ok := got.(json.Number)
	if !ok {
		return false, c.errorf("the value at %s is %s, not a number", c.Path, kindOf(got))
	}
	r := compareNumbers(n, want.(json.Number))
	switch c.Op {
	case "gt":
		return r > 0, nil
	case "gte":
		return r >= 0, nil
	case "lt":
		return r < 0, nil
	default: // lte
		return r <= 0, nil
	}
}

func (c *Condition) errorf(format string, args ...any) error {
	return baton.Errorf(baton.Invalid, "condition", "%s %s: %w", c.Path, c.Op, fmt.Errorf(format, args...))
}

// normalize turns a condition's Value, written in Go or loaded from JSON,
// into the form decodeValue gives: json.Number for numbers, []any and
// map[string]any for lists and objects.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, json.Number:
		return x, nil
	case int:
		return json.Number(strconv.Itoa(x)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("not a JSON number")
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeValue(raw)
}

func decodeValue(raw []byte) (any, error) {
	switch string(raw) { // the common scalars, without a decoder
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if len(raw) > 0 && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') && json.Valid(raw) {
		return json.Number(raw), nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonEqual compares decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		return ok && compareNumbers(x, y) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	default: // string, bool, nil
		return a == b
	}
}

// compareNumbers compares integers exactly and anything else as float64.
func compareNumbers(a, b json.Number) int {
	if x, err := strconv.ParseInt(string(a), 10, 64); err == nil {
		if y, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			return cmp.Compare(x, y)
		}
	}
	// Out of range parses to ±Inf, which still orders correctly.
	x, _ := strconv.ParseFloat(string(a), 64)
	y, _ := strconv.ParseFloat(string(b), 64)
	return cmp.Compare(x, y)
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// SetPath returns a copy of data with value at path, a dotted path of
// object keys ("steps.charge", "last", "vars.token"); objects on the way are
// created where missing or null. Empty data is an empty object, and an empty
// value is null. A value that is not JSON, or a step of the path that is not
// an object, is an Invalid error. data is never modified.
func SetPath(data json.RawMessage, path string, value json.RawMessage) (json.RawMessage, error) {
	if path == "" {
		return nil, baton.Errorf(baton.Invalid, "set path", "empty path")
	}
	value = bytes.TrimSpace(value)
	if len(value) == 0 {
		value = json.RawMessage("null")
	} else if !jsonx.Valid(value) {
		return nil, baton.Errorf(baton.Invalid, "set path", "%s: the value is not JSON", path)
	}
	doc := bytes.TrimSpace(data)
	if len(doc) == 0 {
		doc = []byte("{}")
	}
	out, err := setIn(doc, path, "", value)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "set path", "%s: %w", path, err)
	}
	return out, nil
}

// setIn returns a new copy of the JSON value b with value at path; done is
// the part of the path already walked, for errors.
func setIn(b []byte, path, done string, value []byte) ([]byte, error) {
	if string(b) == "null" {
		b = []byte("{}")
	}
	where := done
	if where == "" {
		where = "the run data"
	}
	if b[0] != '{' {
		v, err := decodeValue(b)
		if err != nil {
			return nil, fmt.Errorf("%s is not JSON: %w", where, err)
		}
		return nil, fmt.Errorf("%s is %s, not an object", where, kindOf(v))
	}
	seg, rest, more := strings.Cut(path, ".")
	if seg == "" || (more && rest == "") {
		return nil, fmt.Errorf("an empty segment in the path")
	}
	m, ok := member(b, 0, seg)
	if !ok {
		return nil, fmt.Errorf("%s is not JSON", where)
	}
	nv := value
	if more {
		sub := []byte("{}")
		if m.start >= 0 {
			sub = b[m.start:m.end]
		}
		var err error
		if nv, err = setIn(sub, rest, joinPath(done, seg), value); err != nil {
			return nil, err
		}
	}
	if m.start >= 0 {
		out := make([]byte, 0, len(b)-(m.end-m.start)+len(nv))
		out = append(out, b[:m.start]...)
		out = append(out, nv...)
		return append(out, b[m.end:]...), nil
	}
	key, _ := json.Marshal(seg) // a string always encodes
	out := make([]byte, 0, len(b)+len(key)+len(nv)+2)
	out = append(out, b[:m.close]...)
	if skipSpace(b, 1) != m.close { // not the first member
		out = append(out, ',')
	}
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, nv...)
	return append(out, b[m.close:]...), nil
}

func joinPath(done, seg string) string {
	if done == "" {
		return seg
	}
	return done + "." + seg
}

// span is where a member's value lies in an object (start is -1 when the
// key is absent) and where the object's closing brace is.
type span struct{ start, end, close int }

// member finds key in the object starting at b[i]. ok is false when the
// object is malformed.
func member(b []byte, i int, key string) (m span, ok bool) {
	m.start = -1
	i++ // the '{'
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return m, false
		}
		if b[i] == '}' {
			m.close = i
			return m, true
		}
		if b[i] != '"' {
			return m, false
		}
		ks := i
		ke, ok := skipString(b, i)
		if !ok {
			return m, false
		}
		i = skipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return m, false
		}
		i = skipSpace(b, i+1)
		ve, ok := skipValue(b, i)
		if !ok {
			return m, false
		}
		if keyIs(b[ks:ke], key) {
			m.start, m.end = i, ve
		}
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
}

// keyIs reports whether the quoted key q is key.
func keyIs(q []byte, key string) bool {
	raw := q[1 : len(q)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == key
	}
	var s string
	return json.Unmarshal(q, &s) == nil && s == key
}

// element finds the element numbered seg in the array starting at b[i].
func element(b []byte, i int, seg string) (start, end int, ok bool) {
	n := 0
	if seg == "" || len(seg) > 9 {
		return 0, 0, false
	}
	for j := 0; j < len(seg); j++ {
		c := seg[j]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	i++ // the '['
	for k := 0; ; k++ {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == ']' {
			return 0, 0, false
		}
		e, ok := skipValue(b, i)
		if !ok {
			return 0, 0, false
		}
		if k == n {
			return i, e, true
		}
		i = skipSpace(b, e)
		if i >= len(b) || b[i] != ',' {
			return 0, 0, false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		escapes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}

// skipValue returns the index after the value starting at b[i]. Objects and
// arrays are skipped by counting brackets outside strings: enough for
// well-formed JSON, and it never reads past b.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				e, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = e
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	default: // a number, true, false or null
		s := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ':', '"', '{', '[', ' ', '\t', '\n', '\r':
				if i == s {
					return 0, false
				}
				return i, true
			}
			i++
		}
		return i, i > s
	}
}
