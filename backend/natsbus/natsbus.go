// Package natsbus is Baton's NATS JetStream transport (bus.Transport,
// bus.GroupPublisher and bus.AsyncPublisher), on github.com/nats-io/nats.go
// and its jetstream package.
//
// Topology. One stream per namespace, named after it in upper case ("BATON"),
// on file storage, with interest retention: a message stays until every
// consumer group it matches has acked it, and a message no group matches is
// not kept. Events travel on "<ns>.ev.<type>"; messages sent to one group
// (PublishTo: replies to a coordinator, replays of dead letters) on
// "<ns>.to.<group>.<type>".
//
// A consumer group is two durable pull consumers, shared by every
// subscription of the group in every process (competing consumers): one
// named after the group (see token for the mapping of names: NATS durable
// names cannot contain '.', '*', '>' or whitespace) for the events it
// subscribes to, and one with the suffix "_to" for the messages sent to it.
// NATS 2.9 gives a consumer one filter subject, so several patterns are
// folded into one filter that covers them all, and the subscription acks
// and skips, on the client, what only the wider filter matched. Both
// consumers ack explicitly, redeliver what is not acked within AckWait, and
// hold at most MaxAckPending un-acked messages (backpressure).
//
// Wire format. Events travel in CloudEvents binary mode, as the NATS
// protocol binding has it: attributes in "ce-" headers, datacontenttype in
// "content-type", data as the body, so that a plain NATS client publishing
// to "<ns>.ev.order.placed.v1" reaches Baton's services. A body that is not
// an event Baton can read is sent as it is, marked with the header
// "baton-raw", and handed back unchanged, so that the consumer dead-letters
// it. Publish sets Nats-Msg-Id to the event id, so that the stream drops a
// copy published again within its duplicate window (two minutes).
//
// Durability. Publish returns once JetStream has acked every message;
// PublishAsync sends them and leaves the wait for the acks to the function
// it returns, so that a consumer can handle its next deliveries meanwhile. By
// default JetStream acks before it fsyncs (it syncs every two minutes), so
// a power loss can lose acknowledged messages. See docs/backends.md.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a Bus. The zero value of every field but URL means the
// documented default.
type Config struct {
	// URL of the NATS server, such as "nats://127.0.0.1:4222"; required. A
	// comma-separated list names the servers of a cluster.
	URL string
	// Namespace separates installations sharing one NATS server (default
	// "baton"): its stream is the namespace in upper case, its subjects
	// start with it. Letters, digits, '-' and '_' only.
	Namespace string
	// MaxAckPending is how many un-acked messages each consumer group holds
	// at most, across its consumers (default 1024).
	MaxAckPending int
	// AckWait is how long JetStream waits for news of a delivery before
	// redelivering it (default 5s): the time a crashed process's messages
	// take to come back. A subscription reports the messages it holds as
	// in progress every third of it, however long their handlers take.
	AckWait time.Duration
	// Logger receives background errors (default: discarded).
	Logger *slog.Logger
}

const (
	defaultNamespace     = "baton"
	defaultMaxAckPending = 1024
	defaultAckWait       = 5 * time.Second
	// publishWindow is how many asynchronous publishes one publish call
	// has in flight before it waits for their acks.
	publishWindow = 512
	// pullBatch is how many messages a subscription asks for at a time.
	// It bounds what one consumer takes ahead of the others of its group.
	pullBatch = 64
	// pullExpiry is how long a pull request waits on the server for
	// messages; it bounds how long a closed subscription takes to hand
	// back what it did not settle.
	pullExpiry = time.Second
)

// Bus is the NATS JetStream transport.
type Bus struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	log    *slog.Logger

	mu       sync.Mutex
	closed   bool
	subs     map[*subscription]struct{}
	directed map[string]bool // groups whose directed consumer exists
	gone     chan struct{}   // closed when the connection is closed
	bg       sync.WaitGroup  // closed subscriptions handing back messages
}

var (
	_ bus.Transport      = (*Bus)(nil)
	_ bus.GroupPublisher = (*Bus)(nil)
	_ bus.AsyncPublisher = (*Bus)(nil)
)

var errClosed = baton.Errorf(baton.Unavailable, "natsbus", "bus is closed")

// Open connects to NATS and creates or updates the namespace's stream. The
// connection reconnects by itself, forever, with exponential backoff and
// jitter; a server unreachable at Open is an error.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	const op = "natsbus open"
	if cfg.URL == "" {
		return nil, baton.Errorf(baton.Invalid, op, "no NATS URL given (such as nats://127.0.0.1:4222)")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = defaultNamespace
	}
	for _, c := range cfg.Namespace {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, baton.Errorf(baton.Invalid, op, "namespace %q: want letters, digits, '-' and '_' only", cfg.Namespace)
		}
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = defaultMaxAckPending
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = defaultAckWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("backend", "natsbus")
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Millisecond))
	}
	gone := make(chan struct{})
	nc, err := nats.Connect(cfg.URL,
		nats.Name("baton"),
		nats.DrainTimeout(10*time.Second),
		nats.ClosedHandler(func(*nats.Conn) { close(gone) }),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := 50 * time.Millisecond << min(attempts, 7) // up to 6.4s
			return d/2 + rand.N(d/2)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", "err", err)
		}),
	)
	if err != nil {
		return nil, baton.Errorf(baton.Unavailable, op, "cannot reach NATS at %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4*publishWindow))
	if err != nil {
		nc.Close()
		return nil, baton.Errorf(baton.Internal, op, "jetstream: %w", err)
	}
	ns := cfg.Namespace
	b := &Bus{
		cfg: cfg, nc: nc, js: js, log: log, gone: gone,
		stream:   strings.ToUpper(ns),
		subs:     make(map[*subscription]struct{}),
		directed: make(map[string]bool),
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.stream,
		Description: "Baton events of namespace " + ns,
		Subjects:    []string{ns + ".ev.>", ns + ".to.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.InterestPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, baton.Errorf(baton.Unavailable, op, "NATS at %s has JetStream disabled (start nats-server with -js): %w", cfg.URL, err)
		}
		return nil, unavailable(op, fmt.Errorf("create stream %s: %w", b.stream, err))
	}
	return b, nil
}

// unavailable wraps an error of the server or the connection.
func unavailable(op string, err error) error {
	return &baton.Error{Code: baton.Unavailable, Op: op, Err: err}
}

// Stream is the name of the namespace's stream.
func (b *Bus) Stream() string { return b.stream }

func (b *Bus) eventSubject(typ string) string { return b.cfg.Namespace + ".ev." + typ }

func (b *Bus) directedPrefix(group string) string {
	return b.cfg.Namespace + ".to." + token(group) + "."
}

// consumerConfig is the configuration of one of a group's consumers.
func (b *Bus) consumerConfig(name, filter, what string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   what,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: b.cfg.MaxAckPending,
		MaxDeliver:    -1,
	}
}

func (b *Bus) declareDirected(ctx context.Context, group string) (jetstream.Consumer, error) {
	cons, err := b.declare(ctx, b.consumerConfig(directedName(group), b.directedPrefix(group)+">",
		"messages sent to Baton group "+group))
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.directed[group] = true
	b.mu.Unlock()
	return cons, nil
}

func (b *Bus) declare(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.stream, cfg)
	if err != nil {
		return nil, unavailable("natsbus declare consumer "+cfg.Durable,
			fmt.Errorf("filter %s on stream %s: %w", cfg.FilterSubject, b.stream, err))
	}
	return cons, nil
}

// Subscribe joins the consumer group, declaring its consumers if new. A new
// group receives what is published from then on.
func (b *Bus) Subscribe(ctx context.Context, group string, patterns []string) (bus.Subscription, error) {
	const op = "natsbus subscribe"
	if group == "" {
		return nil, baton.Errorf(baton.Invalid, op, "no group given")
	}
	if len(patterns) == 0 {
		return nil, baton.Errorf(baton.Invalid, op, "group %s: no patterns given", group)
	}
	for _, p := range patterns {
		if err := checkPattern(op, p); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	reduced := reduce(patterns)
	filter := b.eventSubject(cover(reduced))
	events, err := b.js.Consumer(ctx, b.stream, token(group))
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		// A new group starts at the end of the stream, not at what is
		// still kept for other groups.
		cfg := b.consumerConfig(token(group), filter, "events for Baton group "+group)
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
		events, err = b.declare(ctx, cfg)
	case err == nil:
		info := events.CachedInfo()
		cfg := info.Config
		switch {
		case cfg.FilterSubject != filter:
			// NATS 2.9 accepts a new filter on an existing consumer but
			// then skips messages it should deliver, so the consumer is
			// declared anew, from its ack floor on.
			if err = b.js.DeleteConsumer(ctx, b.stream, cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				err = unavailable(op, fmt.Errorf("group %s: replace consumer %s for new patterns: %w", group, cfg.Durable, err))
				break
			}
			cfg.FilterSubject, cfg.AckWait, cfg.MaxAckPending = filter, b.cfg.AckWait, b.cfg.MaxAckPending
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
			events, err = b.declare(ctx, cfg)
		case cfg.AckWait != b.cfg.AckWait || cfg.MaxAckPending != b.cfg.MaxAckPending:
			cfg.AckWait, cfg.MaxAckPending = b.cfg.AckWait, b.cfg.MaxAckPending
			events, err = b.declare(ctx, cfg)
		}
	default:
		err = unavailable(op, fmt.Errorf("group %s: %w", group, err))
	}
	if err != nil {
		return nil, err
	}
	directed, err := b.declareDirected(ctx, group)
	if err != nil {
		return nil, err
	}
	s := newSubscription(b, group, reduced, events, directed)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.Close()
		return nil, errClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s, nil
}

func (b *Bus) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Close closes the subscriptions still open (their un-acked deliveries go
// back to their groups) and the connection. The stream and the consumers
// stay on the server.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	b.bg.Wait()
	// Drain flushes the acks and naks still buffered before closing.
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	}
	<-b.gone
	return nil
}

// MessagingSystem names the broker in the runtime's spans (bus.MessagingSystem).
func (b *Bus) MessagingSystem() string { return "nats" }

var _ bus.Backlogger = (*Bus)(nil)

// Backlog is the number of messages of group that JetStream holds and that
// are not yet acked: the num_pending (not yet delivered) and the
// num_ack_pending (delivered, in flight or waiting for a retry) of its two
// consumers (events, and messages sent to the group alone). The events
// consumer's filter may be wider than the group's patterns (see cover): the
// messages it skips count until it reaches them.
func (b *Bus) Backlog(ctx context.Context, group string) (int64, error) {
	var n int64
	for _, name := range []string{token(group), directedName(group)} {
		cons, err := b.js.Consumer(ctx, b.stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, unavailable("natsbus backlog", fmt.Errorf("group %s: consumer %s: %w", group, name, err))
		}
		info := cons.CachedInfo()
		n += int64(info.NumPending) + int64(info.NumAckPending)
	}
	return n, nil
}
