package jsonx

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `null`, `true`, `false`, `nul`, `nulll`, `tru`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`,
	`1e-5`, `1e`, `1e+`, `-1.5e10`, `2 3`, `"a"`, `"`, `"\"`, `"\\"`, `"\u00e9"`, `"\u00G9"`, `"\u00e"`, `"\x"`,
	"\"a\x01\"", "\"a\x7f\xff\"", `"\/\b\f\n\r\t"`, `{}`, `[]`, `{ }`, `[ ]`, `{"a":1}`, `{"a":1,}`, `{"a" : 1 , "b" : [ 1 , 2 ] }`,
	`{"a"}`, `{"a":}`, `{a:1}`, `{1:1}`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1 "b":2}`, `[{"a":[{}]}]`, `[{"a":[{}]}`,
	`[{"a":[{}]]}`, `{"a":[}`, `]`, `}`, `[]]`, `{"a":{"b":{"c":null}}}`, " \t\n\r{}\r\n\t ", "\v{}", `[true,false,null]`,
	`[tru]`, `{"a":"b"}x`, `[1e5,-0.0,0.1e-2]`, `[-]`, `[--1]`, `[+1]`, `[0x1]`, `"\ud800"`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := append([]string(nil), validCases...)
	cases = append(cases, strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth),
		strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, maxDepth)+"1"+strings.Repeat("}", maxDepth))
	for _, s := range cases {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%.40q) = %v; json.Valid says %v", s, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range validCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v; json.Valid says %v", b, got, want)
		}
	})
}

var runData = []byte(`{"input":{"order_id":"o-000002","customer":"customer-002","items":[{"sku":"SKU-PEN","qty":3},{"sku":"SKU-SOCKS","qty":1}],"amount_cents":2994},"last":{"type":"order.completed.v1","data":{"order_id":"o-000002"}},"steps":{"charge":{"order_id":"o-000002","payment_id":"pay-o-000002","amount_cents":2994,"note":"caf\u00e9 \"x\""},"notify":{"message":"Your order o-000002 is confirmed and on its way.","n":[1.5,-2e3,true,false,null]}}}`)

func BenchmarkValid(b *testing.B) {
	b.SetBytes(int64(len(runData)))
	for b.Loop() {
		Valid(runData)
	}
}

func BenchmarkValidEncodingJSON(b *testing.B) {
	b.SetBytes(int64(len(runData)))
	for b.Loop() {
		json.Valid(runData)
	}
}
