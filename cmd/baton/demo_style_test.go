package main

import (
	"fmt"
	"strings"
	"testing"
)

// The orchestrated demo runs the same services under the coordinator and
// ends with the same counts as the choreographed one.
func TestDemoOrchestrated(t *testing.T) {
	t.Parallel()
	const n, rate = 300, 0.3
	want, _ := expect(n, rate)
	out := mustRun(t, "demo", "--style", "orchestration", "--orders", fmt.Sprint(n), "--fail-rate", fmt.Sprint(rate), "--data", t.TempDir())
	gotN, got := parseDone(t, out)
	if gotN != n || got != want {
		t.Fatalf("done line says %d orders, %+v; want %d, %+v\n%s", gotN, got, n, want, out)
	}
}

func TestDemoRefusesAnUnknownStyle(t *testing.T) {
	t.Parallel()
	var out, errOut strings.Builder
	if code := run(t.Context(), &env{stdout: &out, stderr: &errOut}, []string{"demo", "--style", "jazz"}); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), `--style "jazz": give choreography or orchestration`) {
		t.Errorf("stderr %q does not say what is wrong", errOut.String())
	}
}
