package event

import (
	"regexp"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	t.Parallel()
	ulid := regexp.MustCompile(`^[0-7][0-9A-HJKMNP-TV-Z]{25}$`)
	seen := make(map[string]bool)
	prev := ""
	for i := 0; i < 10000; i++ {
		id := NewID()
		if !ulid.MatchString(id) {
			t.Fatalf("NewID() = %q, not a ULID", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
		// The first 10 characters are the millisecond, which never goes
		// back (the wall clock could, but not in this test).
		if id[:10] < prev {
			t.Fatalf("NewID() = %q sorts before the previous %q", id, prev)
		}
		prev = id[:10]
	}
}

func TestNewIDTime(t *testing.T) {
	t.Parallel()
	before := time.Now().UnixMilli()
	id := NewID()
	after := time.Now().UnixMilli()
	var ms int64
	for _, c := range id[:10] {
		ms = ms<<5 | int64(indexOf(crockford, byte(c)))
	}
	if ms < before || ms > after {
		t.Errorf("NewID() = %q encodes %d ms, want within [%d, %d]", id, ms, before, after)
	}
}

func indexOf(s string, c byte) int {
	for i := range len(s) {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func TestEncodeULID(t *testing.T) {
	t.Parallel()
	// The ULID spec's largest value, and a known small one.
	all := [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if got := encodeULID(&all); got != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Errorf("max = %q", got)
	}
	one := [16]byte{15: 33}
	if got := encodeULID(&one); got != "00000000000000000000000011" {
		t.Errorf("33 = %q", got)
	}
}

func TestOutputID(t *testing.T) {
	t.Parallel()
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	cases := []struct {
		input, handler string
		index          int
	}{
		{"01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 0},
		{"01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 1},
		{"01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "inventory.reserve", 0},
		{"01J9ZQ4Y7C3V8K2M5N6P7Q8R9T", "payments.charge", 0},
		{"ab", "c", 0},
		{"a", "bc", 0},
		{"", "", 0},
		{"", "", -1},
		{"x", "", 0},
		{"", "x", 0},
		{string(make([]byte, 300)), "long input", 7},
	}
	seen := make(map[string]int)
	for i, c := range cases {
		id := OutputID(c.input, c.handler, c.index)
		if !hex32.MatchString(id) {
			t.Errorf("OutputID(%q, %q, %d) = %q, want 32 hex digits", c.input, c.handler, c.index, id)
		}
		if again := OutputID(c.input, c.handler, c.index); again != id {
			t.Errorf("OutputID(%q, %q, %d) = %q then %q", c.input, c.handler, c.index, id, again)
		}
		if j, dup := seen[id]; dup {
			t.Errorf("cases %d and %d share id %q", j, i, id)
		}
		seen[id] = i
	}
	// Pinned, so that a change of algorithm (which would make every
	// redelivery after an upgrade look new) cannot pass unnoticed.
	if got, want := OutputID("01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 0), pinnedOutputID; got != want {
		t.Errorf("OutputID changed: got %q, want %q", got, want)
	}
}

// pinnedOutputID was computed independently: sha256(0x1a id 0x0f handler
// 0x0000000000000000), first 16 bytes in hex.
const pinnedOutputID = "a2402542c5b79cad1ca6479ae3c5012e"

func TestOutputIDAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() { OutputID("01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 3) })
	if n > 1 {
		t.Errorf("OutputID allocates %v times, want 1 (the string)", n)
	}
}
