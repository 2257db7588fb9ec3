package natsbus

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton"
)

// DeleteNamespace deletes the stream of cfg.Namespace, with its messages and
// its durable consumers (every group's). It reports whether the stream
// existed.
func DeleteNamespace(ctx context.Context, cfg Config) (bool, error) {
	const op = "natsbus delete namespace"
	if cfg.URL == "" {
		return false, baton.Errorf(baton.Invalid, op, "no NATS URL given (Config.URL, such as nats://127.0.0.1:4222)")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "baton"
	}
	nc, err := nats.Connect(cfg.URL, nats.Name("baton"))
	if err != nil {
		return false, baton.Errorf(baton.Unavailable, op, "cannot reach NATS at %s: %w", redactURL(cfg.URL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false, baton.Errorf(baton.Internal, op, "jetstream: %w", err)
	}
	stream := strings.ToUpper(cfg.Namespace) // as Open names it
	switch err := js.DeleteStream(ctx, stream); {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, unavailable(op, err)
	}
	return true, nil
}

// redactURL shows the servers of a NATS URL list without their passwords.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else {
			parts[i] = "(an unparsable URL)"
		}
	}
	return strings.Join(parts, ",")
}
