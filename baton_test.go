package baton_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestBackoffCeilingGrowsWithoutOverflow(t *testing.T) {
	t.Parallel()
	p := baton.RetryPolicy{MaxAttempts: 100, Base: time.Millisecond, Cap: math.MaxInt64}
	top := func() float64 { return math.Nextafter(1, 0) }
	prev := time.Duration(0)
	for attempt := 1; attempt < 100; attempt++ {
		got := p.Backoff(attempt, top)
		if got < prev {
			t.Fatalf("attempt %d: ceiling %v below attempt %d's %v", attempt, got, attempt-1, prev)
		}
		prev = got
	}
	if prev < time.Duration(math.MaxInt64/2) {
		t.Fatalf("ceiling after 99 attempts is %v; want it to reach the cap", prev)
	}
}

func ExampleRetryPolicy_Backoff() {
	p := baton.RetryPolicy{MaxAttempts: 5, Base: 100 * time.Millisecond, Cap: time.Second}
	top := func() float64 { return 1 } // the largest draw, to show the ceilings
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Println(p.Backoff(attempt, top))
	}
	// Output:
	// 100ms
	// 200ms
	// 400ms
	// 800ms
	// 1s
}

func TestRetryPolicyJSON(t *testing.T) {
	t.Parallel()
	var p baton.RetryPolicy
	if err := json.Unmarshal([]byte(`{"max_attempts": 3, "base": "100ms", "cap": "5s"}`), &p); err != nil {
		t.Fatal(err)
	}
	want := baton.RetryPolicy{MaxAttempts: 3, Base: 100 * time.Millisecond, Cap: 5 * time.Second}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	b, _ := json.Marshal(p)
	if string(b) != `{"max_attempts":3,"base":"100ms","cap":"5s"}` {
		t.Fatalf("marshal: %s", b)
	}
	for _, bad := range []string{`{"base": "soon"}`, `{"MaxAttempts": 3}`} {
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
