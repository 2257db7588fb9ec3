package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/cockroachdb/pebble/v2"
)

// The webhook outbox (store.Deliveries): each delivery is a document under
// its id, and an index entry under its webhook and Next, which a claim reads
// in order and moves to now+lease. Adds only create keys; claims, retries
// and deletes, which move or remove existing ones, take b.deliveries from
// their read to their durable write, so none of them reads an index entry
// another is moving.
const (
	kindDelivery     = 'w'
	kindDeliveryNext = 'v'
)

func deliveryKey(id string) []byte {
	return append([]byte{kindDelivery}, id...)
}

// deliveryPrefix is where webhook's index entries start.
func deliveryPrefix(webhook string) []byte {
	b := make([]byte, 0, 2+len(webhook))
	b = append(b, kindDeliveryNext)
	b = append(b, webhook...)
	return append(b, 0)
}

func deliveryNextKey(d store.Delivery) []byte {
	b := appendTime(deliveryPrefix(d.Webhook), d.Next)
	return append(b, d.ID...)
}

func encodeDelivery(d store.Delivery) ([]byte, error) {
	v, err := json.Marshal(d)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "webhook delivery "+d.ID, "encode: %w", err)
	}
	return v, nil
}

// AddDeliveries stores ds; ids already stored are left as they are.
func (b *Backend) AddDeliveries(ctx context.Context, ds ...store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	vals := make([][]byte, len(ds))
	for i, d := range ds {
		if d.ID == "" {
			return baton.Errorf(baton.Invalid, "add webhook delivery", "empty id")
		}
		v, err := encodeDelivery(d)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	return b.write(func(r *round) error {
		for i, d := range ds {
			k := deliveryKey(d.ID)
			_, exists, err := r.get(k)
			if err != nil {
				return err
			}
			if exists {
				continue
			}
			if err := r.setTracked(k, vals[i]); err != nil {
				return err
			}
			if err := r.set(deliveryNextKey(d), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClaimDeliveries returns up to limit due deliveries of webhook, earliest
// Next first, with Next moved to now+lease.
func (b *Backend) ClaimDeliveries(ctx context.Context, webhook string, now time.Time, limit int, lease time.Duration) ([]store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	b.deliveries.Lock()
	defer b.deliveries.Unlock()
	due, err := b.dueDeliveries(webhook, now, limit)
	if err != nil || len(due) == 0 {
		return nil, err
	}
	until := now.Add(lease)
	err = b.write(func(r *round) error {
		for i := range due {
			if err := r.delete(deliveryNextKey(due[i])); err != nil {
				return err
			}
			due[i].Next = until
			v, err := encodeDelivery(due[i])
			if err != nil {
				return err
			}
			if err := r.setTracked(deliveryKey(due[i].ID), v); err != nil {
				return err
			}
			if err := r.set(deliveryNextKey(due[i]), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return due, nil
}

// dueDeliveries reads up to limit deliveries of webhook due at now.
func (b *Backend) dueDeliveries(webhook string, now time.Time, limit int) ([]store.Delivery, error) {
	done, err := b.reader()
	if err != nil {
		return nil, err
	}
	defer done()
	lo := deliveryPrefix(webhook)
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: appendTime(bytes.Clone(lo), now.Add(time.Nanosecond))})
	if err != nil {
		return nil, unavailable("webhook deliveries", err)
	}
	defer iter.Close()
	var out []store.Delivery
	for iter.First(); iter.Valid() && len(out) < limit; iter.Next() {
		id := iter.Key()[len(lo)+8:]
		v, closer, err := b.db.Get(deliveryKey(string(id)))
		if err != nil {
			return nil, unavailable("webhook deliveries", err)
		}
		var d store.Delivery
		err = json.Unmarshal(v, &d)
		closer.Close()
		if err != nil {
			return nil, unavailable("webhook deliveries", err)
		}
		out = append(out, d)
	}
	return out, iter.Error()
}

// RetryDelivery saves d's Attempts, Next and LastError, ending its claim.
func (b *Backend) RetryDelivery(ctx context.Context, d store.Delivery) error {
	b.deliveries.Lock()
	defer b.deliveries.Unlock()
	return b.write(func(r *round) error {
		old, ok, err := b.storedDelivery(r, d.ID)
		if err != nil || !ok {
			return err
		}
		if err := r.delete(deliveryNextKey(old)); err != nil {
			return err
		}
		old.Attempts, old.Next, old.LastError = d.Attempts, d.Next, d.LastError
		v, err := encodeDelivery(old)
		if err != nil {
			return err
		}
		if err := r.setTracked(deliveryKey(old.ID), v); err != nil {
			return err
		}
		return r.set(deliveryNextKey(old), nil)
	})
}

// DeleteDelivery removes a delivery; an unknown id is not an error.
func (b *Backend) DeleteDelivery(ctx context.Context, id string) error {
	b.deliveries.Lock()
	defer b.deliveries.Unlock()
	return b.write(func(r *round) error {
		old, ok, err := b.storedDelivery(r, id)
		if err != nil || !ok {
			return err
		}
		if err := r.delete(deliveryNextKey(old)); err != nil {
			return err
		}
		return r.deleteTracked(deliveryKey(id))
	})
}

func (b *Backend) storedDelivery(r *round, id string) (store.Delivery, bool, error) {
	var d store.Delivery
	v, ok, err := r.get(deliveryKey(id))
	if err != nil || !ok {
		return d, false, err
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return d, false, unavailable("webhook delivery "+id, err)
	}
	return d, true, nil
}

// CountDeliveries is the number of deliveries stored.
func (b *Backend) CountDeliveries(ctx context.Context) (int64, error) {
	done, err := b.reader()
	if err != nil {
		return 0, err
	}
	defer done()
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindDelivery}, UpperBound: []byte{kindDelivery + 1}})
	if err != nil {
		return 0, unavailable("webhook deliveries", err)
	}
	defer iter.Close()
	var n int64
	for iter.First(); iter.Valid(); iter.Next() {
		n++
	}
	return n, iter.Error()
}
