package natsbus

import (
	"slices"
	"testing"
)

func TestToken(t *testing.T) {
	for in, want := range map[string]string{
		"orders-payment": "orders-payment",
		"orders.payment": "orders_2Epayment",
		"a_b":            "a_5Fb",
		"a*>b c":         "a_2A_3Eb_20c",
	} {
		if got := token(in); got != want {
			t.Errorf("token(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCoverAndReduce(t *testing.T) {
	cases := []struct {
		patterns []string
		reduced  []string
		cover    string
	}{
		{[]string{"a.b.v1"}, []string{"a.b.v1"}, "a.b.v1"},
		{[]string{"a.b.v1", "a.c.v1"}, []string{"a.b.v1", "a.c.v1"}, "a.*.v1"},
		{[]string{"a.>", "a.b.v1", "a.*.v1"}, []string{"a.>"}, "a.>"},
		{[]string{"a.b.v2", "a.c.d.v1"}, []string{"a.b.v2", "a.c.d.v1"}, "a.>"},
		{[]string{"a.b", "a.b.c"}, []string{"a.b", "a.b.c"}, "a.>"},
		{[]string{"a.b.v1", "x.>"}, []string{"a.b.v1", "x.>"}, ">"},
		{[]string{"a.b.v1", "a.b.v1"}, []string{"a.b.v1"}, "a.b.v1"},
		{[]string{"*.b.v1", "a.*.v1"}, []string{"*.b.v1", "a.*.v1"}, "*.*.v1"},
	}
	for _, c := range cases {
		r := reduce(c.patterns)
		if !slices.Equal(r, c.reduced) {
			t.Errorf("reduce(%q) = %q, want %q", c.patterns, r, c.reduced)
		}
		if got := cover(r); got != c.cover {
			t.Errorf("cover(%q) = %q, want %q", r, got, c.cover)
		}
	}
}
