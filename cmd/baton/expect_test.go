package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// baton status prints the expectations broken for an order, and its
// verdict names those not met since.
func TestStatusExpectations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	journal := func(entries ...store.Entry) {
		t.Helper()
		b, err := embedded.Open(embedded.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Append(context.Background(), entries...); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	const awaited = "inventory.reserved.v1 or inventory.failed.v1 within 30s of payment.processed.v1"
	journal(store.Entry{Time: now, CorrelationID: "o-1", Outcome: store.Published, EventID: "pay-o-1", EventType: "payment.processed.v1", Source: "payment"},
		store.Entry{Time: now.Add(30 * time.Second), CorrelationID: "o-1", Outcome: store.ExpectationBroken, EventID: "pay-o-1",
			EventType: "payment.processed.v1", Source: "baton.expect/inventory-answers", Error: "no " + awaited})

	out := mustRun(t, "status", "--data", dir, "o-1")
	for _, want := range []string{
		"expectation-broken",
		"expectations:\n  inventory-answers: broken: no " + awaited + " (event pay-o-1)",
		"verdict: in progress: last step: published payment.processed.v1 by payment; expectation inventory-answers broken\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status prints no %q:\n%s", want, out)
		}
	}

	journal(store.Entry{Time: now.Add(32 * time.Second), CorrelationID: "o-1", Outcome: store.ExpectationMetLate, EventID: "res-o-1",
		EventType: "inventory.reserved.v1", Source: "baton.expect/inventory-answers", Error: "inventory.reserved.v1 came 2s late (awaited " + awaited + ")"})
	out = mustRun(t, "status", "--data", dir, "o-1")
	if want := "inventory-answers: broken, then met late: inventory.reserved.v1 came 2s late"; !strings.Contains(out, want) {
		t.Errorf("status prints no %q:\n%s", want, out)
	}
	if strings.Contains(out, "expectation inventory-answers broken") {
		t.Errorf("the verdict names an expectation met since:\n%s", out)
	}
}

// A bad --expect file stops baton server and baton worker before they
// start, with an error naming the file and the field.
func TestExpectFlagRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "expect.yaml")
	if err := os.WriteFile(bad, []byte("name: slow\nafter: payment.processed.v1\nwant: inventory.reserved.v1\nwithin: 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"server", "--demo", "--data", filepath.Join(dir, "server"), "--addr", "127.0.0.1:0", "--expect", bad},
		{"worker", "--service", "payment", "--data", filepath.Join(dir, "worker"), "--expect", bad},
	} {
		r := batonCmd(t, context.Background(), args...)
		if r.code == 0 || !strings.Contains(r.stderr, "--expect") || !strings.Contains(r.stderr, bad) || !strings.Contains(r.stderr, "within 30: write a duration with its unit") {
			t.Errorf("baton %s: exit %d, stderr:\n%s\nwant an error naming --expect, the file and the field", args[0], r.code, r.stderr)
		}
	}
}
