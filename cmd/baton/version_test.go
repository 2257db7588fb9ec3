package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// baton version names the commit a build in a checkout was made from.
func TestVersionNamesTheCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds baton; skipped with -short")
	}
	t.Parallel()
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "baton")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		if strings.Contains(string(out), "VCS status") {
			t.Skipf("git cannot tell this build the commit: %s", out)
		}
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	if !strings.HasPrefix(got, "baton ") || !strings.Contains(got, "(commit "+strings.TrimSpace(string(head))) || !strings.Contains(got, runtime.Version()) {
		t.Fatalf("baton version printed %q; want the module version, commit %s and %s", got, head, runtime.Version())
	}
}

func TestVersionInProcess(t *testing.T) {
	t.Parallel()
	out := mustRun(t, "version")
	if !strings.HasPrefix(out, "baton ") || !strings.HasSuffix(strings.TrimSpace(out), runtime.Version()) {
		t.Fatalf("baton version printed %q", out)
	}
}
