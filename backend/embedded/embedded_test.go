package embedded

import (
	"context"
	"fmt"
	"testing"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
)

func open(t testing.TB) *Backend {
	b, err := Open(Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestPublishReceiveAck(t *testing.T) {
	b := open(t)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, "g", []string{"a.b.v1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if err := b.Publish(ctx, bus.Message{Type: "a.b.v1", ID: fmt.Sprint(i), Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3000 {
		d, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != fmt.Sprint(i) {
			t.Fatalf("got %s want %d", d.ID, i)
		}
		if err := sub.Ack(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// Reads after Close are errors, not panics.
func TestReadsAfterClose(t *testing.T) {
	b, err := Open(Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	ctx := context.Background()
	if _, err := b.Run(ctx, "r-1"); err == nil {
		t.Error("Run after Close: no error")
	}
	if _, err := b.ListRuns(ctx, store.RunQuery{}); err == nil {
		t.Error("ListRuns after Close: no error")
	}
	if _, err := b.History(ctx, "x"); err == nil {
		t.Error("History after Close: no error")
	}
	if err := b.Publish(ctx, bus.Message{Type: "a.b.v1", Body: []byte("{}")}); err == nil {
		t.Error("Publish after Close: no error")
	}
}
