package natsbus_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/natsbus"
	"github.com/batonhq/baton/bus"
)

// DeleteNamespace deletes the namespace's stream, with its consumers.
func TestDeleteNamespace(t *testing.T) {
	requireNATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := natsbus.Config{URL: natsURL(), Namespace: "t" + strings.ToLower(rand.Text()[:12])}
	t.Cleanup(func() { natsbus.DeleteNamespace(context.Background(), cfg) })
	b, err := natsbus.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stream := b.Stream()
	sub, err := b.Subscribe(ctx, "payment", []string{"order.>"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.Message{Event: baton.Event{Type: "order.placed.v1", ID: "e-1", Source: "test", SpecVersion: baton.SpecVersion, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	sub.Close()
	b.Close()

	if deleted, err := natsbus.DeleteNamespace(ctx, cfg); err != nil || !deleted {
		t.Fatalf("delete: %v, %v; want the stream deleted", deleted, err)
	}
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream %s after the delete: %v; want not found", stream, err)
	}
	if deleted, err := natsbus.DeleteNamespace(ctx, cfg); err != nil || deleted {
		t.Errorf("second delete: %v, %v; want nothing deleted", deleted, err)
	}
}

// An error reaching the server does not show the URL's password.
func TestDeleteNamespaceHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := natsbus.DeleteNamespace(ctx, natsbus.Config{URL: "nats://user:secret@127.0.0.1:1"})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v; want one without the password", err)
	}
}
