package bus

import "testing"

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, typ string
		want         bool
	}{
		{"order.placed.v1", "order.placed.v1", true},
		{"order.placed.v1", "order.placed.v2", false},
		{"order.*.v1", "order.placed.v1", true},
		{"order.*", "order.placed.v1", false},
		{"order.placed.*", "order.placed.v9", true},
		{"order.>", "order.placed.v1", true},
		{"order.>", "order", false},
		{">", "a", true},
		{"order.placed.v1", "order.placed", false},
		{"order.placed", "order.placed.v1", false},
		{"*.placed.v1", "order.placed.v1", true},
		{"order..v1", "order..v1", false},
	} {
		if got := Match(tc.pattern, tc.typ); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.typ, got, tc.want)
		}
	}
}
