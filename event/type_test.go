package event

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

func TestParseType(t *testing.T) {
	t.Parallel()
	good := []struct {
		typ     string
		name    string
		version int
	}{
		{"order.placed.v1", "order.placed", 1},
		{"order.v2", "order", 2},
		{"order.placed.v12", "order.placed", 12},
		{"com.example.order-placed.v3", "com.example.order-placed", 3},
		{"order_line.added.v1", "order_line.added", 1},
		{"a.b.c.d.v999999999", "a.b.c.d", 999999999},
		{"order.v1.v2", "order.v1", 2},
		{"0.v1", "0", 1},
	}
	for _, c := range good {
		name, version, err := ParseType(c.typ)
		if err != nil || name != c.name || version != c.version {
			t.Errorf("ParseType(%q) = %q, %d, %v; want %q, %d, nil", c.typ, name, version, err, c.name, c.version)
		}
	}
	bad := []struct{ typ, why string }{
		{"", "empty"},
		{"order.placed", "is not a version"},
		{"v1", "no name"},
		{"order.placed.vx", "is not a version"},
		{"order.placed.v", "is not a version"},
		{"order.placed.1", "is not a version"},
		{"order.placed.V1", "upper-case"},
		{"Order.placed.v1", "upper-case"},
		{"order..placed.v1", "empty segment"},
		{".order.v1", "empty segment"},
		{"order.v1.", "empty segment"},
		{"order.placed.v0", "at least v1"},
		{"order.placed.v01", "leading zero"},
		{"order.placed.v-1", "is not a version"},
		{"order.placed.v1234567890", "too large"},
		{"order placed.v1", "' '"},
		{"order/placed.v1", "'/'"},
		{"order.placéd.v1", "not allowed"},
		{"order.*.v1", "'*'"},
	}
	for _, c := range bad {
		_, _, err := ParseType(c.typ)
		wantInvalid(t, err, c.why, "parse type")
	}
}

func TestParseTypeAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if _, _, err := ParseType("order.placed.v1"); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("ParseType allocates %v times, want 0", n)
	}
}

// A type is bounded, and the error about one that is too long does not
// carry it whole.
func TestParseTypeTooLong(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxTypeLength-3) + ".v1"
	if _, _, err := ParseType(long); err != nil {
		t.Errorf("a type of %d bytes: %v", len(long), err)
	}
	huge := strings.Repeat("a", 500<<10) + ".v1"
	_, _, err := ParseType(huge)
	if err == nil || !strings.Contains(err.Error(), "longer than 255 bytes") {
		t.Fatalf("a type of %d bytes: %v, want an error saying it is too long", len(huge), err)
	}
	if len(err.Error()) > 300 {
		t.Errorf("the error is %d bytes long; it should not carry the type whole", len(err.Error()))
	}
	e := baton.Event{ID: "1", Source: "test", SpecVersion: baton.SpecVersion, Type: "x" + long}
	if err := Validate(e); err == nil {
		t.Errorf("Validate accepted a type of %d bytes", len(e.Type))
	}
}
