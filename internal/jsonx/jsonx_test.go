package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	var all strings.Builder
	for c := 0; c < 256; c++ {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{
		"", "plain", `"`, `\`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é🍕", "\u2028\u2029",
		"\xff", "a\xc3", "\xed\xa0\x80", "<>&", all.String(),
	} {
		got := AppendString(nil, s)
		if !json.Valid(got) {
			t.Errorf("AppendString(%q) = %s, not JSON", s, got)
			continue
		}
		var back, viaStd string
		json.Unmarshal(got, &back)
		std, _ := json.Marshal(s)
		json.Unmarshal(std, &viaStd)
		if back != viaStd {
			t.Errorf("AppendString(%q) reads back as %q, encoding/json's as %q", s, back, viaStd)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "\x00\u2028\xff", "é🍕"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		var back, viaStd string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, got, err)
		}
		std, _ := json.Marshal(s)
		json.Unmarshal(std, &viaStd)
		if back != viaStd {
			t.Fatalf("AppendString(%q) reads back as %q, encoding/json's as %q", s, back, viaStd)
		}
	})
}

// AppendString writes what encoding/json writes with HTML escaping off, but
// for \b and \f.
func TestAppendStringBytesAsEncodingJSON(t *testing.T) {
	t.Parallel()
	var cases []string
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}))
	}
	for r := rune(utf8.RuneSelf); r <= utf8.MaxRune; r++ {
		cases = append(cases, string(r))
	}
	cases = append(cases, "\xed\xa0\x80", "a\xc3", "plain text, longer than a word: \"q\" \\ <a>&", "é🍕\u2028x\u2029")
	for _, s := range cases {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		switch s {
		case "\b":
			want = []byte(`"\u0008"`)
		case "\f":
			want = []byte(`"\u000c"`)
		}
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}
