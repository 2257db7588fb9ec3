// Package rabbitbus is Baton's bus.Transport on RabbitMQ, through
// github.com/rabbitmq/amqp091-go.
//
// Topology, per namespace (Config.Namespace, default "baton"):
//
//   - one durable topic exchange named after the namespace; a message's
//     routing key is its event type;
//   - one durable queue "<ns>.<group>" per consumer group, bound to the
//     group's type patterns ("*" stays "*", a final ">" becomes "*.#", so
//     that it matches one or more segments as bus.Match does);
//   - "<ns>.<group>.bindings", a one-message queue recording the routing
//     keys the group is bound to, so that a Subscribe with a changed pattern
//     set unbinds the ones it no longer wants (the last Subscribe wins);
//   - "<ns>.<group>.delay.<bucket>", declared on the first Nack with that
//     delay: a queue whose x-message-ttl is the bucket and whose dead-letter
//     target is the group's queue;
//   - with QueueType "quorum", "<ns>.<group>.dead": where the broker puts a
//     message that was handed back (a consumer crashed or closed) more than
//     DeliveryLimit times.
//
// Events travel in CloudEvents binary mode (AMQP protocol binding):
// attributes in "cloudEvents_"-prefixed application properties, the data
// content type in the content-type property, the data as the body. A plain
// AMQP client in any language can publish to the exchange and consume from a
// group's queue; docs/backends.md shows how.
//
// Two connections are kept, one for publishing and one for consuming, so
// that a broker blocking publishers (a memory or disk alarm) does not also
// stop consumers from acknowledging. Both reconnect with backoff, forever,
// until Close.
package rabbitbus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

// Config configures a Bus. The zero value of every field but URL means its
// documented default.
type Config struct {
	// URL of the broker, such as amqp://guest:guest@127.0.0.1:5672/.
	// Required.
	URL string
	// Namespace names the exchange and prefixes the queues (default "baton").
	Namespace string
	// Prefetch bounds the deliveries one consumer holds un-acked (default 256).
	Prefetch int
	// QueueType of the groups' queues: "classic" (default), declared with
	// x-queue-mode=lazy so that large backlogs stay on disk, or "quorum"
	// (replicated, for clusters), declared with DeliveryLimit and a
	// dead-letter queue.
	QueueType string
	// QueueTypes chooses the queue type of some groups, overriding QueueType
	// for them (group -> "classic" or "quorum"). Every process of a
	// namespace must give the same choice: a queue keeps the type it was
	// declared with, and declaring it with another fails.
	QueueTypes map[string]string
	// DeliveryLimit of quorum queues (default 100): how often the broker
	// hands a message back after consumers crashed or closed before moving it
	// to "<ns>.<group>.dead". Nacks do not count: they publish a new copy.
	DeliveryLimit int
	// PublishTimeout is how long a publish waits through an outage before it
	// fails (default 30s).
	PublishTimeout time.Duration
	// Logger receives reconnections and unroutable messages (default: none).
	Logger *slog.Logger
}

// Bus is a bus.Transport and bus.GroupPublisher on RabbitMQ.
type Bus struct {
	cfg      Config
	log      *slog.Logger
	redacted string // the URL without its password, for errors and logs

	pub, sub *link

	pmu     sync.Mutex // guards pch and pchConn
	pch     *amqp.Channel
	pchConn *amqp.Connection

	mu       sync.Mutex
	declared map[string]uint64 // queue name -> sub link generation it was declared in
	names    map[string]bool   // every queue this Bus declared (tests delete them)
	subs     map[*subscription]bool

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var (
	_ bus.Transport      = (*Bus)(nil)
	_ bus.GroupPublisher = (*Bus)(nil)
)

// Open connects to the broker and declares the namespace's exchange. It
// fails when the broker cannot be reached now; once open, the Bus rides out
// outages by itself.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.URL == "" {
		return nil, baton.Errorf(baton.Invalid, "rabbitbus open", "no broker URL given (Config.URL, such as amqp://guest:guest@127.0.0.1:5672/)")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "baton"
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 256
	}
	if cfg.QueueType == "" {
		cfg.QueueType = "classic"
	}
	if err := checkQueueType("", cfg.QueueType); err != nil {
		return nil, err
	}
	for group, typ := range cfg.QueueTypes {
		if err := checkQueueType(group, typ); err != nil {
			return nil, err
		}
	}
	if cfg.DeliveryLimit <= 0 {
		cfg.DeliveryLimit = 100
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		cfg:      cfg,
		log:      log.With("backend", "rabbitmq", "namespace", cfg.Namespace),
		redacted: redact(cfg.URL),
		declared: make(map[string]uint64),
		names:    make(map[string]bool),
		subs:     make(map[*subscription]bool),
		done:     make(chan struct{}),
	}
	b.pub = &link{b: b, name: "publish", ready: make(chan struct{})}
	b.sub = &link{b: b, name: "consume", ready: make(chan struct{}), setup: b.declareExchange}
	for _, l := range []*link{b.pub, b.sub} {
		conn, err := l.dial(ctx)
		if err == nil && l.setup != nil {
			if err = l.setup(conn); err != nil {
				conn.Close()
			}
		}
		if err != nil {
			b.Close()
			return nil, baton.Errorf(baton.Unavailable, "rabbitbus open", "cannot reach RabbitMQ at %s: %w", b.redacted, err)
		}
		l.up(conn)
	}
	return b, nil
}

// Close closes the subscriptions (handing back what they had not acked) and
// both connections. It is idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		subs := make([]*subscription, 0, len(b.subs))
		for s := range b.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()
		for _, s := range subs {
			s.Close()
		}
		close(b.done)
		for _, l := range []*link{b.pub, b.sub} {
			if l == nil {
				continue
			}
			l.mu.Lock()
			conn := l.conn
			l.mu.Unlock()
			if conn != nil {
				conn.Close()
			}
		}
		b.wg.Wait()
	})
	return nil
}

var errClosed = baton.Errorf(baton.Unavailable, "rabbitbus", "the bus is closed")

// queue names a group's queue.
func (b *Bus) queue(group string) string { return b.cfg.Namespace + "." + group }

func (b *Bus) declareExchange(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(b.cfg.Namespace, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", b.cfg.Namespace, err)
	}
	return nil
}

// link is one connection that is re-established whenever it is lost.
type link struct {
	b     *Bus
	name  string
	setup func(*amqp.Connection) error // run on every new connection before use

	mu    sync.Mutex
	conn  *amqp.Connection
	ready chan struct{} // closed while conn is up
	gen   uint64        // counts connections
}

func (l *link) dial(ctx context.Context) (*amqp.Connection, error) {
	cfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Properties: amqp.Table{
			"connection_name": "baton " + l.b.cfg.Namespace + " " + l.name,
			"product":         "baton",
		},
	}
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Bounds the AMQP handshake; amqp091-go clears it once open.
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	return amqp.DialConfig(l.b.cfg.URL, cfg)
}

func (l *link) up(conn *amqp.Connection) {
	l.mu.Lock()
	l.conn = conn
	l.gen++
	close(l.ready)
	l.mu.Unlock()
	l.b.wg.Add(1)
	go l.watch(conn)
}

// watch waits for conn to close and reconnects, with exponential backoff
// and full jitter, until it succeeds or the Bus closes.
func (l *link) watch(conn *amqp.Connection) {
	defer l.b.wg.Done()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	var reason *amqp.Error
	select {
	case reason = <-closed:
	case <-l.b.done:
		return
	}
	l.mu.Lock()
	l.conn = nil
	l.ready = make(chan struct{})
	l.mu.Unlock()
	select {
	case <-l.b.done:
		return
	default:
	}
	l.b.log.Warn("connection to RabbitMQ lost; reconnecting", "connection", l.name, "url", l.b.redacted, "reason", reason)
	for attempt := 0; ; attempt++ {
		select {
		case <-time.After(backoff(attempt)):
		case <-l.b.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := l.dial(ctx)
		cancel()
		if err == nil && l.setup != nil {
			if err = l.setup(c); err != nil {
				c.Close()
			}
		}
		if err != nil {
			l.b.log.Warn("reconnect to RabbitMQ failed", "connection", l.name, "url", l.b.redacted, "attempt", attempt+1, "err", err)
			continue
		}
		select {
		case <-l.b.done:
			c.Close()
			return
		default:
		}
		l.b.log.Info("reconnected to RabbitMQ", "connection", l.name, "url", l.b.redacted, "attempts", attempt+1)
		l.up(c)
		return
	}
}

// wait returns the live connection, waiting for one while there is none.
func (l *link) wait(ctx context.Context) (*amqp.Connection, uint64, error) {
	for {
		l.mu.Lock()
		conn, ready, gen := l.conn, l.ready, l.gen
		l.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, gen, nil
		}
		if conn != nil {
			// Closed, and watch has not noticed yet.
			ready = nil
		}
		select {
		case <-ready:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-l.b.done:
			return nil, 0, errClosed
		}
	}
}

// backoff is exponential from 50ms to 5s, with full jitter.
func backoff(attempt int) time.Duration {
	d := 5 * time.Second
	if attempt < 7 {
		d = 50 * time.Millisecond << attempt
	}
	return d/2 + rand.N(d/2+1)
}

// redact hides the password of an AMQP URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User == nil {
		return u.String()
	}
	if _, has := u.User.Password(); !has {
		return u.String()
	}
	user := url.User(u.User.Username()).String()
	u.User = nil
	return u.Scheme + "://" + user + ":***@" + strings.TrimPrefix(u.String(), u.Scheme+"://")
}

// MessagingSystem names the broker in the runtime's spans (bus.MessagingSystem).
func (b *Bus) MessagingSystem() string { return "rabbitmq" }
