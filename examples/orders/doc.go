// Package orders is Baton's example business process: an order is paid for,
// its items are reserved, the customer is told, and the order completes — or
// it is cancelled, with the payment refunded when stock runs out after the
// charge.
//
// Four services take part, as plain baton.Service values. Their handlers do
// not know whether they run under choreography (each reacting to events on the
// bus) or orchestration (a coordinator handing them each step); the same
// values serve both.
//
//	order.placed.v1       -> payment      -> payment.processed.v1 | payment.failed.v1 (declined)
//	payment.processed.v1  -> inventory    -> inventory.reserved.v1 | inventory.failed.v1 (out of stock)
//	inventory.reserved.v1 -> notification -> notification.sent.v1
//	notification.sent.v1  -> order        -> order.completed.v1 (terminal)
//	payment.failed.v1     -> order        -> order.cancelled.v1 (terminal)
//	inventory.failed.v1   -> payment      -> payment.refunded.v1 (the refund)
//	payment.refunded.v1   -> order        -> order.cancelled.v1 (terminal)
//
// Every event a handler emits has the order id as its subject.
//
// # The outside world
//
// What the services do outside Baton — charge and refund a card, reserve
// stock, send a message, close the order — is written to a Ledger, keyed by
// order and effect. Handlers pass the id of the event they handle as the
// idempotency key, as a real payment provider's API takes one: the same
// (order, effect, key) recorded twice is one effect, while the same (order,
// effect) under a different key is a second effect — a customer charged
// twice. Ledger.Duplicates lists those, which is what fault tests check after
// killing processes and restarting brokers.
//
// # Faults
//
// Faults makes a share of the orders go wrong, decided from a hash of the
// order id so a process restarted after a crash decides the same way: cards
// declined, items out of stock, a payment gateway that fails twice before
// answering, and one that never answers (those orders end in the payment
// group's dead letters, with the reason in the error).
package orders
