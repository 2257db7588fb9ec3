package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/batonhq/baton"
)

// PaymentRetry is the payment service's retry policy: short, so a demo shows
// the flaky gateway's retries and the dead gateway's dead letters quickly.
var PaymentRetry = baton.RetryPolicy{MaxAttempts: 4, Base: 20 * time.Millisecond, Cap: 500 * time.Millisecond}

// Services returns the order, payment, inventory and notification services,
// sharing one Ledger on which each records its own effects, with faults
// injected as f says.
//
// Handlers use the id of the event they handle as the idempotency key of
// what they record, so they must be given events with ids, as the runtime
// and the coordinator do.
func Services(l *Ledger, f Faults) []baton.Service {
	p := &payment{ledger: l, faults: f}
	inv := &inventory{ledger: l, faults: f}
	n := &notification{ledger: l}
	o := &order{ledger: l}
	return []baton.Service{
		{Name: "order", Handlers: []baton.Handler{
			{Type: TypeNotificationSent, Func: o.complete},
			{Type: TypePaymentFailed, Func: o.cancelDeclined},
			{Type: TypePaymentRefunded, Func: o.cancelRefunded},
		}},
		{Name: "payment", Retry: PaymentRetry, Handlers: []baton.Handler{
			{Type: TypeOrderPlaced, Func: p.charge},
			{Type: TypeInventoryFailed, Func: p.refund},
		}},
		{Name: "inventory", Handlers: []baton.Handler{
			{Type: TypePaymentProcessed, Func: inv.reserve},
		}},
		{Name: "notification", Handlers: []baton.Handler{
			{Type: TypeInventoryReserved, Func: n.notify},
		}},
	}
}

type payment struct {
	ledger *Ledger
	faults Faults
}

func (p *payment) charge(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var o OrderPlaced
	if err := decode(e, &o); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, malformed(e, err)
	}
	switch p.faults.For(o.OrderID) {
	case Declined:
		return emit(TypePaymentFailed, o.OrderID, PaymentFailed{
			OrderID: o.OrderID, AmountCents: o.AmountCents, Reason: "card declined",
		})
	case GatewayFlaky:
		// The gateway times out on the first two attempts. The attempt
		// number is the runtime's, which survives restarts.
		if n := baton.Attempt(ctx); n <= 2 {
			return nil, baton.Errorf(baton.Unavailable, "charge",
				"payment gateway timed out for order %s (attempt %d)", o.OrderID, n)
		}
	case GatewayDown:
		return nil, baton.Errorf(baton.Unavailable, "charge",
			"payment gateway unavailable for order %s: connection refused", o.OrderID)
	}
	if err := p.ledger.Record(o.OrderID, EffectCharged, e.ID); err != nil {
		return nil, fmt.Errorf("charge order %s: %w", o.OrderID, err)
	}
	return emit(TypePaymentProcessed, o.OrderID, PaymentProcessed{
		OrderID:     o.OrderID,
		PaymentID:   "pay-" + o.OrderID,
		Customer:    o.Customer,
		Items:       o.Items,
		AmountCents: o.AmountCents,
	})
}

func (p *payment) refund(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var f InventoryFailed
	if err := decode(e, &f); err != nil {
		return nil, err
	}
	if f.OrderID == "" {
		return nil, malformed(e, fmt.Errorf("order_id missing"))
	}
	if err := p.ledger.Record(f.OrderID, EffectRefunded, e.ID); err != nil {
		return nil, fmt.Errorf("refund order %s: %w", f.OrderID, err)
	}
	return emit(TypePaymentRefunded, f.OrderID, PaymentRefunded{
		OrderID:     f.OrderID,
		PaymentID:   f.PaymentID,
		AmountCents: f.AmountCents,
		Reason:      f.Reason,
	})
}

type inventory struct {
	ledger *Ledger
	faults Faults
}

func (inv *inventory) reserve(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var p PaymentProcessed
	if err := decode(e, &p); err != nil {
		return nil, err
	}
	if p.OrderID == "" || len(p.Items) == 0 {
		return nil, malformed(e, fmt.Errorf("order_id or items missing"))
	}
	if inv.faults.For(p.OrderID) == OutOfStock {
		sku := p.Items[len(p.Items)-1].SKU
		return emit(TypeInventoryFailed, p.OrderID, InventoryFailed{
			OrderID:     p.OrderID,
			PaymentID:   p.PaymentID,
			AmountCents: p.AmountCents,
			SKU:         sku,
			Reason:      sku + " out of stock",
		})
	}
	if err := inv.ledger.Record(p.OrderID, EffectReserved, e.ID); err != nil {
		return nil, fmt.Errorf("reserve order %s: %w", p.OrderID, err)
	}
	return emit(TypeInventoryReserved, p.OrderID, InventoryReserved{
		OrderID:       p.OrderID,
		ReservationID: "res-" + p.OrderID,
		PaymentID:     p.PaymentID,
		Customer:      p.Customer,
		Items:         p.Items,
		AmountCents:   p.AmountCents,
	})
}

type notification struct{ ledger *Ledger }

func (n *notification) notify(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var r InventoryReserved
	if err := decode(e, &r); err != nil {
		return nil, err
	}
	if r.OrderID == "" {
		return nil, malformed(e, fmt.Errorf("order_id missing"))
	}
	if err := n.ledger.Record(r.OrderID, EffectNotified, e.ID); err != nil {
		return nil, fmt.Errorf("notify order %s: %w", r.OrderID, err)
	}
	return emit(TypeNotificationSent, r.OrderID, NotificationSent{
		OrderID:  r.OrderID,
		Customer: r.Customer,
		Channel:  "email",
		Message:  fmt.Sprintf("Your order %s is confirmed and on its way.", r.OrderID),
	})
}

type order struct{ ledger *Ledger }

func (o *order) complete(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var s NotificationSent
	if err := decode(e, &s); err != nil {
		return nil, err
	}
	if s.OrderID == "" {
		return nil, malformed(e, fmt.Errorf("order_id missing"))
	}
	if err := o.ledger.Record(s.OrderID, EffectCompleted, e.ID); err != nil {
		return nil, fmt.Errorf("complete order %s: %w", s.OrderID, err)
	}
	return emit(TypeOrderCompleted, s.OrderID, OrderCompleted{OrderID: s.OrderID})
}

func (o *order) cancelDeclined(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var f PaymentFailed
	if err := decode(e, &f); err != nil {
		return nil, err
	}
	return o.cancel(e, f.OrderID, "payment failed: "+f.Reason, false)
}

func (o *order) cancelRefunded(ctx context.Context, e baton.Event) ([]baton.Event, error) {
	var r PaymentRefunded
	if err := decode(e, &r); err != nil {
		return nil, err
	}
	return o.cancel(e, r.OrderID, "refunded: "+r.Reason, true)
}

func (o *order) cancel(e baton.Event, orderID, reason string, refunded bool) ([]baton.Event, error) {
	if orderID == "" {
		return nil, malformed(e, fmt.Errorf("order_id missing"))
	}
	if err := o.ledger.Record(orderID, EffectCancelled, e.ID); err != nil {
		return nil, fmt.Errorf("cancel order %s: %w", orderID, err)
	}
	return emit(TypeOrderCancelled, orderID, OrderCancelled{OrderID: orderID, Reason: reason, Refunded: refunded})
}

// decode reads e's data into v; data that cannot be read never will be.
func decode(e baton.Event, v any) error {
	if err := e.Decode(v); err != nil {
		return baton.Permanent(err)
	}
	if e.ID == "" {
		return baton.Permanent(baton.Errorf(baton.Invalid, "handle "+e.Type, "event has no id, the idempotency key of its effects"))
	}
	return nil
}

func malformed(e baton.Event, err error) error {
	return baton.Permanent(baton.Errorf(baton.Invalid, "handle "+e.Type, "malformed event %s: %w", e.ID, err))
}

// emit returns the one event a handler causes, about the order.
func emit(typ, orderID string, data any) ([]baton.Event, error) {
	out, err := baton.NewEvent(typ, orderID, data)
	if err != nil {
		return nil, err
	}
	return []baton.Event{out}, nil
}
