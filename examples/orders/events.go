package orders

import (
	"errors"
	"fmt"
	"strings"

	"github.com/batonhq/baton"
)

// The event types of the order process.
const (
	TypeOrderPlaced       = "order.placed.v1"
	TypePaymentProcessed  = "payment.processed.v1"
	TypePaymentFailed     = "payment.failed.v1"
	TypePaymentRefunded   = "payment.refunded.v1"
	TypeInventoryReserved = "inventory.reserved.v1"
	TypeInventoryFailed   = "inventory.failed.v1"
	TypeNotificationSent  = "notification.sent.v1"
	TypeOrderCompleted    = "order.completed.v1"
	TypeOrderCancelled    = "order.cancelled.v1"
)

// Item is one line of an order.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// OrderPlaced is the data of order.placed.v1, the event that starts an
// order. Its subject is the order id.
type OrderPlaced struct {
	OrderID     string `json:"order_id"`
	Customer    string `json:"customer"`
	Items       []Item `json:"items"`
	AmountCents int64  `json:"amount_cents"`
}

// Validate reports everything wrong with o, or nil. The payment service
// dead-letters an order that fails it, since retrying cannot fix it.
func (o OrderPlaced) Validate() error {
	var problems []string
	if o.OrderID == "" {
		problems = append(problems, "order_id missing")
	}
	if len(o.Items) == 0 {
		problems = append(problems, "items empty")
	}
	for i, it := range o.Items {
		if it.SKU == "" {
			problems = append(problems, fmt.Sprintf("items[%d].sku missing", i))
		}
		if it.Qty <= 0 {
			problems = append(problems, fmt.Sprintf("items[%d].qty %d is not positive", i, it.Qty))
		}
	}
	if o.AmountCents <= 0 {
		problems = append(problems, fmt.Sprintf("amount_cents %d is not positive", o.AmountCents))
	}
	if problems == nil {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// Event returns o as an order.placed.v1 event about o.OrderID, ready to
// publish or to start a flow with.
func (o OrderPlaced) Event() (baton.Event, error) {
	return baton.NewEvent(TypeOrderPlaced, o.OrderID, o)
}

// PaymentProcessed is the data of payment.processed.v1: the customer was
// charged. It carries the order's items and customer on, so that the services
// after payment need no other source.
type PaymentProcessed struct {
	OrderID     string `json:"order_id"`
	PaymentID   string `json:"payment_id"`
	Customer    string `json:"customer"`
	Items       []Item `json:"items"`
	AmountCents int64  `json:"amount_cents"`
}

// PaymentFailed is the data of payment.failed.v1: the card was declined,
// nothing was charged. A business outcome, not an error.
type PaymentFailed struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Reason      string `json:"reason"`
}

// PaymentRefunded is the data of payment.refunded.v1: a charge was given back
// because the order could not be fulfilled.
type PaymentRefunded struct {
	OrderID     string `json:"order_id"`
	PaymentID   string `json:"payment_id"`
	AmountCents int64  `json:"amount_cents"`
	Reason      string `json:"reason"`
}

// InventoryReserved is the data of inventory.reserved.v1: the items are set
// aside for the order.
type InventoryReserved struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
	PaymentID     string `json:"payment_id"`
	Customer      string `json:"customer"`
	Items         []Item `json:"items"`
	AmountCents   int64  `json:"amount_cents"`
}

// InventoryFailed is the data of inventory.failed.v1: the items could not be
// reserved after the customer was charged, so the payment must be refunded.
type InventoryFailed struct {
	OrderID     string `json:"order_id"`
	PaymentID   string `json:"payment_id"`
	AmountCents int64  `json:"amount_cents"`
	SKU         string `json:"sku"` // the item that ran out
	Reason      string `json:"reason"`
}

// NotificationSent is the data of notification.sent.v1: the customer was
// told the order is on its way.
type NotificationSent struct {
	OrderID  string `json:"order_id"`
	Customer string `json:"customer"`
	Channel  string `json:"channel"`
	Message  string `json:"message"`
}

// OrderCompleted is the data of order.completed.v1, a terminal event.
type OrderCompleted struct {
	OrderID string `json:"order_id"`
}

// OrderCancelled is the data of order.cancelled.v1, a terminal event.
type OrderCancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
	// Refunded is true when the customer was charged and then refunded.
	Refunded bool `json:"refunded,omitempty"`
}

// catalogue is what NewOrder picks items from, with unit prices in cents.
var catalogue = []struct {
	sku   string
	price int64
}{
	{"SKU-BOOK", 1299},
	{"SKU-MUG", 899},
	{"SKU-PEN", 199},
	{"SKU-LAMP", 3450},
	{"SKU-SOCKS", 599},
}

// NewOrder returns the i-th sample order, "o-000042" for i = 42: one to three
// distinct items from a small catalogue, the amount their total. The same i
// gives the same order.
func NewOrder(i int) OrderPlaced {
	o := OrderPlaced{
		OrderID:  fmt.Sprintf("o-%06d", i),
		Customer: fmt.Sprintf("customer-%03d", modulo(i, 1000)),
	}
	for j := range 1 + modulo(i, 3) {
		c := catalogue[modulo(i+2*j, len(catalogue))]
		qty := 1 + modulo(i+j, 3)
		o.Items = append(o.Items, Item{SKU: c.sku, Qty: qty})
		o.AmountCents += c.price * int64(qty)
	}
	return o
}

func modulo(i, n int) int { return (i%n + n) % n }
