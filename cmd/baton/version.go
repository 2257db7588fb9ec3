package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

func runVersion(ctx context.Context, e *env, args []string) error {
	f := newFlags("version", "print the module version and the commit baton was built from", "", `
Prints the version of the module baton was built from (v1.2.3 when
installed with go install ...@v1.2.3, "(devel)" when built in a checkout),
the commit and its time when the build recorded them (a "+dirty" commit
had uncommitted changes), and the Go version.`,
		"baton version")
	if _, err := f.parseArgs(e, args, 0, 0, ""); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, version())
	return nil
}

// version is "baton VERSION (commit COMMIT, TIME) GOVERSION", from what the
// build recorded.
func version() string {
	v, commit, when, dirty := "unknown", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	out := "baton " + v
	if commit != "" {
		if dirty {
			commit += "+dirty"
		}
		out += " (commit " + commit
		if when != "" {
			out += ", " + when
		}
		out += ")"
	}
	return out + " " + runtime.Version()
}
