// Package expectations declares what the order process expects under
// choreography (package expect), apart from the services, which know
// nothing of how they are coordinated or watched.
package expectations

import (
	"time"

	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/expect"
)

// InventoryAnswers is the order process's expectation: once a payment is
// processed, the inventory reserves the items or says it cannot, within
// 30 s. baton demo declares it; with the inventory service down, every
// paid order raises its alert, cleared when the service comes back.
func InventoryAnswers() expect.Expectation {
	return expect.Expectation{Name: "inventory-answers", After: []string{orders.TypePaymentProcessed},
		Want: []string{orders.TypeInventoryReserved, orders.TypeInventoryFailed}, Within: 30 * time.Second}
}
