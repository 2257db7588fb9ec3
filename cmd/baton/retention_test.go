package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// --retention and --dead-letter-cap, else BATON_RETENTION and
// BATON_DEAD_LETTER_CAP, set the store's retention; 0 turns a bound off.
func TestRetentionFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want store.Retention
	}{
		{"defaults", nil, nil, store.Retention{}},
		{"flags", []string{"--retention", "2160h", "--dead-letter-cap", "5000"}, nil, store.Retention{Age: 2160 * time.Hour, DeadCap: 5000}},
		{"environment", nil, map[string]string{envRetention: "48h", envDeadLetterCap: "10"}, store.Retention{Age: 48 * time.Hour, DeadCap: 10}},
		{"flags win", []string{"--retention", "72h"}, map[string]string{envRetention: "48h"}, store.Retention{Age: 72 * time.Hour}},
		{"off", []string{"--retention", "0", "--dead-letter-cap", "0"}, nil, store.Retention{Age: -1, DeadCap: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlags("worker", "", "", "")
			r := f.retentionFlags()
			e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string { return tc.env[k] }}
			if _, err := f.parse(e, tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := r.fromEnv(e, "worker")
			if err != nil || got != tc.want {
				t.Errorf("args %q, env %v: %+v, %v; want %+v", tc.args, tc.env, got, err, tc.want)
			}
		})
	}
}

// A retention that is not a duration, shorter than an hour, or a negative
// cap is a usage error that says what to give, before anything is opened.
func TestRetentionFlagsRefuseBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--demo", "--retention", "thirty days"}, "give a duration such as 720h"},
		{[]string{"server", "--demo", "--retention", "5m"}, "give at least 1h0m0s"},
		{[]string{"worker", "--service", "payment", "--data", "x", "--dead-letter-cap", "-3"}, "give a number of dead letters"},
	} {
		var out, errOut bytes.Buffer
		code := run(t.Context(), &env{stdout: &out, stderr: &errOut}, tc.args)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("baton %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
}

// baton server --help and baton worker --help describe the flags.
func TestRetentionFlagsHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"server", "worker"} {
		var out bytes.Buffer
		run(t.Context(), &env{stdout: &out, stderr: &bytes.Buffer{}}, []string{cmd, "--help"})
		for _, want := range []string{"--retention D", envRetention, "--dead-letter-cap N", envDeadLetterCap} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("baton %s --help does not mention %s", cmd, want)
			}
		}
	}
}

// baton dlq show says that a dead letter's body was truncated, and how
// long it was.
func TestDLQShowTruncated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := embedded.Open(embedded.Config{Dir: dir, Retention: store.Retention{DeadBody: 16}})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id":"ev-1","type":"order.placed.v1","data":{"note":"long enough to be cut"}}`
	err = b.AddDead(t.Context(), store.DeadLetter{Group: "billing", Type: "order.placed.v1", EventID: "ev-1", Body: []byte(body)})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), &env{stdout: &out, stderr: &errOut}, []string{"dlq", "show", "--data", dir, "1"}); code != 0 {
		t.Fatalf("dlq show: exit %d: %s", code, errOut.String())
	}
	want := fmt.Sprintf("body (truncated: the first 16 of %d bytes; it cannot be replayed):\n%s\n", len(body), body[:16])
	if !strings.Contains(out.String(), want) {
		t.Errorf("dlq show printed\n%s\nwant it to contain\n%s", out.String(), want)
	}
}
