package orders

import "hash/fnv"

// Faults makes a share of the orders go wrong, for demos and fault tests.
// The zero value injects none.
type Faults struct {
	// Rate is the share of orders in [0, 1] that meet a fault. Of those,
	// 30% are declined, 25% run out of stock, 35% meet a flaky payment
	// gateway and 10% a gateway that is down.
	Rate float64
}

// Fault is what goes wrong with one order.
type Fault int

const (
	NoFault      Fault = iota
	Declined           // the card is declined: payment.failed.v1, the order is cancelled
	OutOfStock         // an item runs out after the charge: refund, the order is cancelled
	GatewayFlaky       // the payment handler fails twice with a transient error, then succeeds
	GatewayDown        // the payment handler always fails; order.placed.v1 is dead-lettered
)

func (k Fault) String() string {
	switch k {
	case NoFault:
		return "none"
	case Declined:
		return "declined"
	case OutOfStock:
		return "out of stock"
	case GatewayFlaky:
		return "gateway flaky"
	case GatewayDown:
		return "gateway down"
	}
	return "unknown"
}

// Outcome is the terminal event type an order with this fault reaches, or ""
// for GatewayDown, whose order.placed.v1 ends in the payment group's dead
// letters once its retries are spent.
func (k Fault) Outcome() string {
	switch k {
	case NoFault, GatewayFlaky:
		return TypeOrderCompleted
	case Declined, OutOfStock:
		return TypeOrderCancelled
	}
	return ""
}

// For decides the fault of an order from a hash of its id alone, so every
// process, and the same process after a restart, decides the same.
func (f Faults) For(orderID string) Fault {
	if f.Rate <= 0 {
		return NoFault
	}
	u := unit(orderID)
	switch {
	case u < f.Rate*0.3:
		return Declined
	case u < f.Rate*0.55:
		return OutOfStock
	case u < f.Rate*0.9:
		return GatewayFlaky
	case u < f.Rate:
		return GatewayDown
	}
	return NoFault
}

// unit maps s to [0, 1), evenly even for ids that differ in one character.
func unit(s string) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	x := h.Sum64()
	// splitmix64's finalizer spreads FNV's low-bit differences to the top.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}
