package jsonx

import (
	"encoding/json"
	"strings"
	"testing"
)

var validSeeds = []string{
	`{}`, `[]`, `1`, `-0.5e+10`, `"a\u00e9"`, `{"a":[1,2,{"b":null}]}`, "\"\x01\"", `01`, `1.`,
	`{"a":1,}`, `[1,]`, "\"\xff\"", " {\"a\" : true }\n", `tru`, `"\ud800"`, `{"a":1}{"b":2}`,
	`nan`, `1e`, `-`, "\"\x7f\"", "{\"a\":\"\t\"}", `"\x"`, `{"a" 1}`, `[1 2]`, ``, ` `,
}

func FuzzValidMatchesEncodingJSON(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v; encoding/json says %v", b, got, want)
		}
	})
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := append(validSeeds, deep(maxDepth), deep(maxDepth+1), deep(500000),
		`{"a":`+deep(maxDepth-1)+`}`, `{"a":`+deep(maxDepth)+`}`,
		`{"pad":"`+strings.Repeat("x", 900)+`"}`)
	for _, s := range cases {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%.40q) = %v; encoding/json says %v", s, got, want)
		}
	}
}

func BenchmarkValid(b *testing.B) {
	data := []byte(`{"pad":"` + strings.Repeat("x", 900) + `"}`)
	for _, f := range []struct {
		name  string
		valid func([]byte) bool
	}{{"jsonx", Valid}, {"encoding-json", json.Valid}} {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if !f.valid(data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
