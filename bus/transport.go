package bus

import (
	"context"
	"errors"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
)

// Message is an event as a transport carries it: the event's attributes and
// data, which each transport maps to its native form (AMQP properties and
// headers, NATS headers, the embedded record) in one step each way, and the
// metadata of protocols layered over publish/subscribe. Nothing between the
// runtime and the broker encodes the event as a JSON envelope. A transport
// may hand the same event, data included, to every group it reaches and
// keep it as it was published: what receives a message reads it and does
// not modify it in place.
type Message struct {
	baton.Event
	// Meta is routing that belongs to a protocol, not to the event: a flow
	// step's command names the coordinator that waits for its result
	// (MetaReplyTo) and the run and step it is for, and the runtime copies
	// it onto the outputs it sends back. Transports carry it beside the
	// event (headers "baton-<key>" on AMQP and NATS). Nil for
	// choreography.
	Meta map[string]string
	// Raw, when set, is sent instead of the event: bytes that could not be
	// read as an event, replayed from a dead letter as they were received.
	// The receiving transport reads them in CloudEvents structured mode and
	// hands on what it cannot read with the error, for the runtime to
	// dead-letter again.
	Raw []byte
}

// Metadata keys of the coordinator's protocol.
const (
	// MetaReplyTo names the consumer group that wants a handler's outputs:
	// the coordinator whose flow step sent the event. Outputs then go to
	// that group only, not to every subscriber of their types.
	MetaReplyTo = "replyto"
	// MetaRun names the flow run a step's command is for; Replay refuses
	// the command of a run that has ended.
	MetaRun = "run"
)

// Delivery is a message handed to one consumer of a group.
type Delivery struct {
	Message
	// Err is set when the message could not be read as an event (malformed
	// JSON data, a missing attribute, a bad header): the event then holds
	// what could be read of it (its type for routing, its id and
	// correlation id when present), Raw the message as received, and the
	// runtime dead-letters it with Err as the reason. Raw may also be set
	// without Err, for a message that came in structured mode: its size and
	// its dead letter are then those bytes.
	Err     error
	Attempt int // 1 on first delivery; counts Nacks, not crashes
	// Unique is set by a transport that knows its group receives this
	// message once: it was written once, in the atomic commit that consumed
	// its cause, so no copy of it can have been handled before. The runtime
	// then spares it the inbox lookup it makes before every other handler
	// call. Left false, the lookup is made: the safe default.
	Unique bool
	Ref    any // the transport's handle for Ack and Nack
}

// Transport moves messages between services. Publish returns only once every
// message is durable; a message is delivered to one consumer of each group
// whose patterns match its type, at least once.
type Transport interface {
	Publish(ctx context.Context, msgs ...Message) error
	// Subscribe joins a consumer group, declaring it durably if new, bound to
	// type patterns such as "order.placed.v1" or "order.*". Messages
	// published to a declared group are kept while no consumer runs.
	Subscribe(ctx context.Context, group string, patterns []string) (Subscription, error)
	Close() error
}

// Subscription is one consumer of a group.
type Subscription interface {
	// Receive blocks until a message is available or ctx is done.
	Receive(ctx context.Context) (Delivery, error)
	// Ack settles a delivery as handled.
	Ack(ctx context.Context, d Delivery) error
	// Nack redelivers d to the group after delay, with Attempt+1.
	Nack(ctx context.Context, d Delivery, delay time.Duration) error
	// Close stops the consumer; deliveries not yet acked are redelivered to
	// the group.
	Close() error
}

// Commit is everything that handling one delivery changes. A Committer
// applies it in one atomic write; elsewhere the runtime applies it step by
// step in a crash-safe order (publish, journal, inbox, dead letter, settle).
type Commit struct {
	Group    string
	Delivery *Delivery // settled by the commit; nil for a plain publish
	// RetryAfter >= 0 nacks Delivery with that delay instead of acking it.
	Retry      bool
	RetryAfter time.Duration
	Publish    []Message
	// ReplyTo, when set, sends Publish to that consumer group only (the
	// coordinator that sent Delivery, named by its MetaReplyTo), declaring
	// it if needed.
	ReplyTo string
	// Handled, when set, is the event id to mark in Group's inbox: the group
	// handled it or dead-lettered it. A Committer that finds it already
	// marked settles the delivery as a duplicate instead: it acks it,
	// publishes nothing, adds no dead letter and journals a duplicate, so
	// outputs appear once. It does the same for a retry of an event whose
	// id is marked.
	Handled string
	Journal []store.Entry
	Dead    *store.DeadLetter
}

// Committer is implemented by transports that share a database with their
// store and can apply a Commit atomically. When it settles the delivery as a
// duplicate (see Commit.Handled) it returns an error that is ErrDuplicate:
// the commit is complete, and nothing else of it was applied.
type Committer interface {
	Commit(ctx context.Context, c Commit) error
}

// ErrDuplicate says a commit settled its delivery as a duplicate.
var ErrDuplicate = errors.New("settled as a duplicate: the group already handled or dead-lettered this event")

// GroupPublisher is implemented by transports that can deliver to one group
// only; Replay then hands a dead letter back to the group that gave up on it
// and no other.
type GroupPublisher interface {
	PublishTo(ctx context.Context, group string, msgs ...Message) error
}

// AsyncPublisher is implemented by transports that can send messages at
// once and confirm them later. The runtime then lets each consumer handle
// its next deliveries while the broker confirms the outputs of earlier ones,
// and settles each delivery, in the order received, once its outputs are
// confirmed: with a broker on the other end of a network, this is most of
// a consumer's time.
type AsyncPublisher interface {
	// PublishAsync sends msgs as Publish does or, when group is set, as
	// GroupPublisher.PublishTo does, and returns a function that waits until
	// every one is durable and returns what Publish would have.
	PublishAsync(ctx context.Context, group string, msgs ...Message) func(context.Context) error
}

// AsyncCommitter is implemented by Committers that can take a commit at
// once and make it durable later (the embedded backend: its writer groups
// the commits waiting into one fsync). The runtime then lets each consumer
// handle its next deliveries while the commits of earlier ones wait for the
// disk, as with AsyncPublisher, and counts each delivery, in the order
// received, once its commit is durable.
type AsyncCommitter interface {
	// CommitAsync starts applying c as Commit does and returns a function
	// that waits until it is durable and returns what Commit would have.
	// The function must be called, once.
	CommitAsync(ctx context.Context, c Commit) func(context.Context) error
}

// Backlogger is implemented by transports that can tell how many messages
// wait for a consumer group. The runtime asks when its metrics are scraped
// (baton_group_backlog_messages), not per message, so it may cost a round
// trip to the broker.
type Backlogger interface {
	Backlog(ctx context.Context, group string) (int64, error)
}

// Structured is the delivery of a message that came in CloudEvents
// structured mode (a plain client's choice, or Raw bytes Baton sent as they
// were): the event read from b or, when it cannot be read, Err with what
// could be, typ and id naming it where b does not. Raw is b either way, so
// that its size is its own and its dead letter holds it as it came.
func Structured(typ, id string, b []byte, meta map[string]string) Delivery {
	e, err := event.Unmarshal(b)
	d := Delivery{Message: Message{Event: e, Meta: meta, Raw: b}, Err: err}
	if d.Type == "" {
		d.Type = typ
	}
	if d.ID == "" {
		d.ID = id
	}
	return d
}
