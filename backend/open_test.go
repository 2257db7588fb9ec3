package backend

import (
	"context"
	"maps"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c                  Config
		wantBus, wantStore string
		err                string
	}{
		{Config{}, Embedded, Embedded, ""},
		{Config{Bus: "embedded", Store: "embedded"}, Embedded, Embedded, ""},
		{Config{Store: "redis://127.0.0.1:6379/0"}, "", "", "--store redis://… needs --bus nats://… or amqp://…: the embedded backend can only be both"},
		{Config{Bus: "embedded", Store: "postgres://x/y"}, "", "", "--store postgres://… needs --bus"},
		{Config{Bus: "nats://127.0.0.1:4222", Store: "redis://127.0.0.1:6379/0"}, NATS, Redis, ""},
		{Config{Bus: "NATS://127.0.0.1:4222", Store: "postgresql://x/y"}, NATS, Postgres, ""},
		{Config{Bus: "amqp://guest:guest@127.0.0.1:5672/", Store: "postgres://x/y"}, RabbitMQ, Postgres, ""},
		{Config{Bus: "rabbitmq://guest:guest@127.0.0.1:5672/", Store: "redis://x"}, RabbitMQ, Redis, ""},
		{Config{Bus: "nats://127.0.0.1:4222"}, "", "", "--bus nats://… needs --store postgres://… or redis://…: the embedded backend can only be both"},
		{Config{Bus: "amqp://u:secret@h/", Store: "embedded"}, "", "", "--bus amqp://… needs --store postgres://… or redis://…"},
		{Config{Bus: "kafka://u:secret@h"}, "", "", "--bus kafka://…: unknown kind of bus; give embedded, nats://..., amqp://... or rabbitmq://..."},
		{Config{Bus: "127.0.0.1:4222"}, "", "", `--bus "127.0.0.1:4222": unknown kind of bus`},
		{Config{Store: "mysql://u:secret@h/db"}, "", "", "--store mysql://…: unknown kind of store; give embedded, postgres://..., postgresql://... or redis://..."},
		{Config{Namespace: "a.b"}, "", "", `--namespace "a.b": want letters, digits, '-' and '_' only`},
	} {
		t.Run(tc.c.Bus+" "+tc.c.Store+" "+tc.c.Namespace, func(t *testing.T) {
			b, s, err := tc.c.Kinds()
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one saying %q", err, tc.err)
				}
				if baton.ErrorCode(err) != baton.Invalid {
					t.Errorf("error coded %s, want invalid", baton.ErrorCode(err))
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the password", err)
				}
			case err != nil:
				t.Fatal(err)
			case b != tc.wantBus || s != tc.wantStore:
				t.Fatalf("bus %s, store %s; want %s, %s", b, s, tc.wantBus, tc.wantStore)
			}
		})
	}
}

// Flags win over the environment, field by field.
func TestOrAndFromEnv(t *testing.T) {
	env := map[string]string{EnvBus: "nats://e:4222", EnvStore: "redis://e", EnvNamespace: "envns", EnvData: "/env"}
	got := Config{Bus: "amqp://f/"}.Or(FromEnv(func(k string) string { return env[k] }))
	want := Config{Bus: "amqp://f/", Store: "redis://e", Namespace: "envns", Data: "/env"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestQueueTypesFromURL(t *testing.T) {
	for _, tc := range []struct {
		in, rest, def string
		groups        map[string]string
		err           string
	}{
		{in: "amqp://guest:guest@127.0.0.1:5672/", rest: "amqp://guest:guest@127.0.0.1:5672/"},
		{in: "amqp://h/?queue_type=quorum", rest: "amqp://h/", def: "quorum"},
		{in: "amqp://h/?queue_type.payment=quorum&queue_type.order=quorum&heartbeat=10", rest: "amqp://h/?heartbeat=10",
			groups: map[string]string{"payment": "quorum", "order": "quorum"}},
		{in: "amqp://h/?queue_type=quorum&queue_type.mail=classic", rest: "amqp://h/", def: "quorum", groups: map[string]string{"mail": "classic"}},
		{in: "amqp://h/?queue_type.=quorum", err: "want queue_type or queue_type.GROUP"},
		{in: "amqp://h/?queue_types=quorum", err: "want queue_type or queue_type.GROUP"},
	} {
		rest, def, groups, err := QueueTypes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || rest != tc.rest || def != tc.def || !maps.Equal(groups, tc.groups) {
			t.Errorf("%s: %q %q %v %v; want %q %q %v", tc.in, rest, def, groups, err, tc.rest, tc.def, tc.groups)
		}
	}
}

// A password in a URL never shows in an error, whatever the driver says:
// a NATS server that is not there, a second NATS URL that does not parse,
// a Redis or PostgreSQL URL that does not parse, RabbitMQ refusing the
// credentials.
func TestOpenErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	const pw = "s3cretpw"
	closed := closedPort(t)
	for _, c := range []Config{
		{Bus: "nats://bob:" + pw + "@" + closed, Store: "redis://127.0.0.1:6379/0"},
		{Bus: "nats://bob:" + pw + "@127.0.0.1:4222,nats://x:" + pw + "@[bad", Store: "redis://127.0.0.1:6379/0"},
		{Bus: "nats://127.0.0.1:4222", Store: "redis://bob:" + pw + "@127.0.0.1:6379/notanumber"},
		{Bus: "nats://127.0.0.1:4222", Store: "redis://bob:" + pw + "@[::1"},
		{Bus: "nats://127.0.0.1:4222", Store: "postgres://bob:" + pw + "@127.0.0.1:5432/test?sslmode=disable&x=%zz"},
		{Bus: "amqp://bob:" + pw + "@" + closed + "/", Store: "postgres://bob:" + pw + "@" + closed + "/test"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b, err := Open(ctx, c)
		cancel()
		if err == nil {
			b.Close()
			t.Errorf("%s %s: opened; want an error", Redact(c.Bus), Redact(c.Store))
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the credentials: %v", err)
		}
		if !strings.Contains(err.Error(), "--bus") && !strings.Contains(err.Error(), "--store") {
			t.Errorf("error %q does not say which URL is wrong", err)
		}
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The embedded backend opens in its directory, created when missing, and a
// second Open of the same directory says it is in use.
func TestOpenEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/data"
	b, err := Open(context.Background(), Config{Data: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Transport == nil || b.Store == nil || b.String() != "embedded in "+dir {
		t.Fatalf("backends %v: transport %v, store %v", b, b.Transport, b.Store)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{Data: dir})
	if baton.ErrorCode(err) != baton.Unavailable || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v; want unavailable, in use", err)
	}
}
