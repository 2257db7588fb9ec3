package store

import (
	"context"
	"time"
)

// Delivery is a notification waiting to be posted to one webhook: a row of
// the webhook outbox (package notify). It stays in the store from the moment
// the notification is produced until the webhook answers it or the sender
// gives it up, so that a restart sends what a crash interrupted.
type Delivery struct {
	// ID is the caller's, unique across webhooks: the webhook-id header a
	// receiver dedupes by.
	ID string `json:"id"`
	// Webhook is the key of the endpoint, which the store only compares.
	Webhook  string    `json:"webhook"`
	Kind     string    `json:"kind"`
	Body     []byte    `json:"body"`
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts,omitempty"` // made and answered so far
	// Next is when the delivery may be claimed: the time of its next
	// attempt, or, while it is claimed, when the claim lapses.
	Next      time.Time `json:"next"`
	LastError string    `json:"last_error,omitempty"`
}

// Deliveries is the webhook outbox, implemented by every Baton store and
// required by a notify.Hub with webhooks. Senders claim due deliveries with
// a lease, so that several servers sharing the store do not post the same
// one at once; a claim that lapses (its holder crashed) makes the delivery
// claimable again. Times are the callers', so servers sharing a store are
// expected to keep their clocks in step (a lease covers small skews).
type Deliveries interface {
	// AddDeliveries stores ds, each claimable from its Next on. An ID
	// already stored is left as it is.
	AddDeliveries(ctx context.Context, ds ...Delivery) error
	// ClaimDeliveries returns up to limit deliveries of webhook whose Next
	// is not after now, earliest Next first (then by ID), and sets their
	// Next to now+lease: until then no other claim returns them.
	ClaimDeliveries(ctx context.Context, webhook string, now time.Time, limit int, lease time.Duration) ([]Delivery, error)
	// RetryDelivery saves d's Attempts, Next and LastError, which ends its
	// claim: it is claimable again from d.Next. A delivery no longer stored
	// is not an error, and is not stored again.
	RetryDelivery(ctx context.Context, d Delivery) error
	// DeleteDelivery removes a delivery sent or given up; an unknown id is
	// not an error.
	DeleteDelivery(ctx context.Context, id string) error
	// CountDeliveries is the number of deliveries stored, claimed or not,
	// for every webhook.
	CountDeliveries(ctx context.Context) (int64, error)
}
