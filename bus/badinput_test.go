package bus_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
)

// Bad input (DESIGN §8): each kind gets a clear error, is dead-lettered or
// refused, is counted, and neither blocks nor loses the good events published
// around it.

func TestMalformedJSONIsDeadLettered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body string }{
		{"not JSON", "{not json"},
		{"empty body", ""},
		{"truncated", `{"specversion":"1.0","id":"trunc-1","source":"test","type":"order.placed.v1","data":{"n":`},
		{"trailing garbage", `{"specversion":"1.0","id":"trail-1","source":"test","type":"order.placed.v1"} x`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := openMemory(t)
			orders := newRecorder()
			rt := run(t, b, bus.Config{}, ordersService(orders.handle))
			bad := bus.Message{Event: baton.Event{Type: "order.placed.v1"}, Raw: []byte(tc.body)}
			good := around(t, rt, func() {
				if err := b.Publish(t.Context(), bad); err != nil {
					t.Fatalf("publish raw message: %v", err)
				}
			})

			dl := waitDead(t, b, 1)[0]
			checkDead(t, dl, "orders", "order.placed.v1", bad.Raw, 1, "malformed JSON")
			wantDeadStats(t, rt, bus.ReasonMalformed)
			checkJournaled(t, b, dl)
			orders.wait(t, good...)
			orders.exactlyOnce(t, good...)
		})
	}
}

func TestMissingRequiredAttributeIsDeadLettered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		attr   string
		reason string
	}{
		{"source", `missing required attribute "source"`},
		{"id", `missing required attribute "id"`},
		{"specversion", `missing required attribute "specversion"`},
		{"type", `missing required attribute "type"`},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			t.Parallel()
			b := openMemory(t)
			orders := newRecorder()
			rt := run(t, b, bus.Config{}, ordersService(orders.handle))
			members := map[string]any{
				"specversion": "1.0", "id": "evt-1", "source": "test", "type": "order.placed.v1",
				"correlationid": "corr-1", "subject": "order-1", "data": map[string]int{"n": 1},
			}
			delete(members, tc.attr)
			body, err := json.Marshal(members)
			if err != nil {
				t.Fatal(err)
			}
			bad := bus.Message{Event: baton.Event{Type: "order.placed.v1"}, Raw: body}
			if id, ok := members["id"].(string); ok {
				bad.ID = id
			}
			good := around(t, rt, func() {
				if err := b.Publish(t.Context(), bad); err != nil {
					t.Fatalf("publish raw message: %v", err)
				}
			})

			dl := waitDead(t, b, 1)[0]
			checkDead(t, dl, "orders", "order.placed.v1", body, 1, tc.reason)
			if dl.EventID != bad.ID || dl.CorrelationID != "corr-1" {
				t.Errorf("dead letter names event %q correlation %q; want %q and corr-1 (read from the body)",
					dl.EventID, dl.CorrelationID, bad.ID)
			}
			wantDeadStats(t, rt, bus.ReasonInvalid)
			checkJournaled(t, b, dl)
			orders.wait(t, good...)
			orders.exactlyOnce(t, good...)
		})
	}
}

func TestPublishRefusesInvalidEvents(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	orders := newRecorder()
	rt := run(t, b, bus.Config{}, ordersService(orders.handle))
	for i, tc := range []struct {
		name string
		typ  string
		says string
	}{
		{"missing type", "", `missing required attribute "type"`},
		{"upper-case type", "Order.Placed.v1", `bad event type "Order.Placed.v1": upper-case letters are not allowed`},
		{"unversioned type", "order.placed", `bad event type "order.placed": last segment "placed" is not a version v<N>`},
		{"version zero", "order.placed.v0", `bad event type "order.placed.v0": version must be at least v1`},
		{"space in type", "order placed.v1", `bad event type "order placed.v1": character ' ' is not allowed`},
	} {
		published := rt.Stats().Published()
		refused := rt.Stats().Refused()
		good := orderEvent(t, fmt.Sprintf("batch-good-%d", i), i)
		bad := orderEvent(t, fmt.Sprintf("batch-bad-%d", i), i)
		bad.Type = tc.typ
		err := rt.Publish(t.Context(), good, bad)
		if err == nil || baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: Publish = %v (code %q); want an invalid error saying %q", tc.name, err, baton.ErrorCode(err), tc.says)
		}
		if got := rt.Stats().Refused(); got != refused+1 {
			t.Errorf("%s: Refused went from %d to %d, want +1", tc.name, refused, got)
		}
		wantCount(t, "Published", rt.Stats().Published, int64(published))
		// The journal is written with the publish: no entry, no publish.
		if h := history(t, b, good.ID); len(h) != 0 {
			t.Errorf("%s: the good event of the refused batch was published: %s", tc.name, describe(h))
		}
	}
	// The runtime is unharmed and the good events, published again, go
	// through; the ones of the refused batches were not delivered.
	var good []string
	for i := range 5 {
		good = append(good, fmt.Sprintf("batch-good-%d", i))
		publish(t, rt, orderEvent(t, good[i], i))
	}
	orders.wait(t, good...)
	orders.exactlyOnce(t, good...)
	if n := orders.distinct(); n != len(good) {
		t.Errorf("handled %d distinct events, want %d", n, len(good))
	}
	if dl := deadLetters(t, b); len(dl) != 0 {
		t.Errorf("refused events reached the dead letters: %d", len(dl))
	}
}

func TestUnsupportedTypeOrVersionIsDeadLettered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		takes  []string // the handlers' types, in declaration order
		bad    func(t *testing.T) bus.Message
		reason []string
		// deadType is the type the dead letter names, when not the one
		// the message was routed by: the type of the event it holds.
		deadType string
	}{
		{
			name:  "unknown version",
			takes: []string{"order.placed.v1"},
			bad: func(t *testing.T) bus.Message {
				return raw(t, typedEvent(t, "order.placed.v7", "bad-1", map[string]int{"n": 7}))
			},
			reason: []string{`unsupported version 7 of "order.placed"`, "takes v1"},
		},
		{
			name:  "newer than every handler",
			takes: []string{"order.placed.v2", "order.placed.v1"},
			bad: func(t *testing.T) bus.Message {
				return raw(t, typedEvent(t, "order.placed.v3", "bad-1", map[string]int{"n": 3}))
			},
			reason: []string{`unsupported version 3 of "order.placed"`, "takes v2"},
		},
		{
			// Routed as order.placed.v1, but the envelope says otherwise.
			name:  "type no handler takes",
			takes: []string{"order.placed.v1"},
			bad: func(t *testing.T) bus.Message {
				m := raw(t, typedEvent(t, "order.cancelled.v1", "bad-1", map[string]int{"n": 1}))
				m.Type = "order.placed.v1"
				return m
			},
			reason:   []string{"service orders has no handler for order.cancelled.v1", "it handles order.placed.v1"},
			deadType: "order.cancelled.v1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := openMemory(t)
			orders := newRecorder()
			svc := baton.Service{Name: "orders"}
			for _, typ := range tc.takes {
				svc.Handlers = append(svc.Handlers, baton.Handler{Type: typ, Func: orders.handle})
			}
			rt := run(t, b, bus.Config{}, svc)
			bad := tc.bad(t)
			good := around(t, rt, func() {
				if err := b.Publish(t.Context(), bad); err != nil {
					t.Fatalf("publish raw message: %v", err)
				}
			})

			dl := waitDead(t, b, 1)[0]
			checkDead(t, dl, "orders", cmp.Or(tc.deadType, bad.Type), bad.Raw, 1, tc.reason...)
			if dl.EventID != "bad-1" || dl.CorrelationID != "bad-1" {
				t.Errorf("dead letter names event %q correlation %q, want bad-1 for both", dl.EventID, dl.CorrelationID)
			}
			wantDeadStats(t, rt, bus.ReasonUnsupported)
			checkJournaled(t, b, dl)
			orders.wait(t, good...)
			orders.exactlyOnce(t, good...)
			if n := orders.times("bad-1"); n != 0 {
				t.Errorf("a handler was given the unsupported event %d times", n)
			}
		})
	}
}

func TestUnsupportedVersionViaPublish(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	orders := newRecorder()
	rt := run(t, b, bus.Config{}, ordersService(orders.handle))
	good := around(t, rt, func() { publish(t, rt, typedEvent(t, "order.placed.v7", "v7-1", map[string]int{"n": 7})) })

	dl := waitDead(t, b, 1)[0]
	checkDead(t, dl, "orders", "order.placed.v7", nil, 1, `unsupported version 7 of "order.placed" (this handler takes v1)`)
	wantDeadStats(t, rt, bus.ReasonUnsupported)
	checkJournaled(t, b, dl)
	if dl.CorrelationID != "v7-1" {
		t.Errorf("dead letter correlation %q, want v7-1", dl.CorrelationID)
	}
	orders.wait(t, good...)
	orders.exactlyOnce(t, good...)
}

func TestUpcasterBringsOldVersionsToTheHandler(t *testing.T) {
	t.Parallel()
	reg := event.NewRegistry()
	// v2 carries the amount in cents instead of a decimal.
	err := reg.Upcaster("order.placed.v1", "order.placed.v2", func(data json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			N      int     `json:"n"`
			Amount float64 `json:"amount"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]int{"n": v1.N, "amount_cents": int(v1.Amount*100 + 0.5)})
	})
	if err != nil {
		t.Fatal(err)
	}
	b := openMemory(t)
	orders := newRecorder()
	rt := run(t, b, bus.Config{Registry: reg},
		baton.Service{Name: "orders", Handlers: []baton.Handler{{Type: "order.placed.v2", Func: orders.handle}}})
	old := typedEvent(t, "order.placed.v1", "old-1", map[string]any{"n": 1, "amount": 12.5})
	old.DataSchema = "https://schemas.example.com/order.placed.v1.json"
	current := typedEvent(t, "order.placed.v2", "new-1", map[string]int{"n": 2, "amount_cents": 999})
	tooNew := typedEvent(t, "order.placed.v3", "v3-1", map[string]int{"n": 3})
	publish(t, rt, old, current, tooNew)

	orders.wait(t, "old-1", "new-1")
	for _, want := range []struct {
		id   string
		data map[string]int
	}{{"old-1", map[string]int{"n": 1, "amount_cents": 1250}}, {"new-1", map[string]int{"n": 2, "amount_cents": 999}}} {
		e, _ := orders.last(want.id)
		var got map[string]int
		if err := json.Unmarshal(e.Data, &got); err != nil || e.Type != "order.placed.v2" || e.DataSchema != "" ||
			fmt.Sprint(got) != fmt.Sprint(want.data) {
			t.Errorf("%s reached the handler as type %q schema %q data %s (%v); want order.placed.v2, no schema, %v",
				want.id, e.Type, e.DataSchema, e.Data, err, want.data)
		}
	}
	dl := waitDead(t, b, 1)[0]
	checkDead(t, dl, "orders", "order.placed.v3", nil, 1,
		`unsupported version 3 of "order.placed" (this handler takes v2; upcasters exist from v1)`)
	checkJournaled(t, b, dl)
	wantDeadStats(t, rt, bus.ReasonUnsupported)
	orders.exactlyOnce(t, "old-1", "new-1")
}

func TestSchemaViolationIsDeadLettered(t *testing.T) {
	t.Parallel()
	reg := event.NewRegistry()
	schema := `{
		"type": "object",
		"required": ["n", "amount"],
		"properties": {"n": {"type": "integer"}, "amount": {"type": "number", "minimum": 0}}
	}`
	if err := reg.Schema("order.placed.v1", []byte(schema)); err != nil {
		t.Fatal(err)
	}
	b := openMemory(t)
	orders := newRecorder()
	rt := run(t, b, bus.Config{Registry: reg}, ordersService(orders.handle))
	invalid := typedEvent(t, "order.placed.v1", "bad-amount", map[string]any{"n": 1, "amount": "twelve"})

	// Publish checks the schema and refuses...
	err := rt.Publish(t.Context(), invalid)
	if err == nil || baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "does not match its schema") {
		t.Errorf("Publish of data that fails the schema = %v; want an invalid error saying it does not match its schema", err)
	}
	if got := rt.Stats().Refused(); got != 1 {
		t.Errorf("Refused: got %d, want 1", got)
	}
	// ...and a publisher that goes around the runtime meets the consumer's
	// check.
	var good []string
	for i := range 6 {
		id := fmt.Sprintf("good-%d", i)
		good = append(good, id)
		e := typedEvent(t, "order.placed.v1", id, map[string]any{"n": i, "amount": 12.5})
		if i == 3 {
			if err := b.Publish(t.Context(), raw(t, invalid)); err != nil {
				t.Fatal(err)
			}
		}
		publish(t, rt, e)
	}

	dl := waitDead(t, b, 1)[0]
	checkDead(t, dl, "orders", "order.placed.v1", nil, 1, "bad-amount does not match its schema", "'/amount'", "want number")
	wantDeadStats(t, rt, bus.ReasonUnsupported)
	checkJournaled(t, b, dl)
	orders.wait(t, good...)
	orders.exactlyOnce(t, good...)
	if n := orders.times("bad-amount"); n != 0 {
		t.Errorf("the handler was given data that fails its schema %d times", n)
	}
}

func TestOversizedEventIsRefusedOrDeadLettered(t *testing.T) {
	t.Parallel()
	const limit = 2048
	b := openMemory(t)
	orders := newRecorder()
	rt := run(t, b, bus.Config{MaxEventSize: limit}, ordersService(orders.handle))
	big := typedEvent(t, "order.placed.v1", "big-1", map[string]string{"note": strings.Repeat("x", 3000)})

	err := rt.Publish(t.Context(), big)
	if err == nil || baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "over the 2048-byte limit") {
		t.Errorf("Publish of a %d-byte event = %v; want an invalid error saying it is over the 2048-byte limit", limit, err)
	}
	if got := rt.Stats().Refused(); got != 1 {
		t.Errorf("Refused: got %d, want 1", got)
	}
	if h := history(t, b, "big-1"); len(h) != 0 {
		t.Errorf("the refused event was published: %s", describe(h))
	}

	big.ID, big.CorrelationID = "big-raw", "big-raw"
	bad := raw(t, big)
	good := around(t, rt, func() {
		if err := b.Publish(t.Context(), bad); err != nil {
			t.Fatalf("publish raw message: %v", err)
		}
	})
	dl := waitDead(t, b, 1)[0]
	checkDead(t, dl, "orders", "order.placed.v1", bad.Raw, 1,
		fmt.Sprintf("event is %d bytes, over the 2048-byte limit", len(bad.Raw)))
	if dl.EventID != "big-raw" {
		t.Errorf("dead letter names event %q, want big-raw (the message's id)", dl.EventID)
	}
	wantDeadStats(t, rt, bus.ReasonTooLarge)
	checkJournaled(t, b, dl)
	orders.wait(t, good...)
	orders.exactlyOnce(t, good...)
}

func TestHopsOverTheLimitAreDeadLettered(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	orders := newRecorder()
	rt := run(t, b, bus.Config{}, ordersService(orders.handle))
	atLimit := orderEvent(t, "hops-32", 32)
	atLimit.Hops = 32
	over := orderEvent(t, "hops-33", 33)
	over.Hops = 33
	good := around(t, rt, func() { publish(t, rt, atLimit, over) })

	dl := waitDead(t, b, 1)[0]
	checkDead(t, dl, "orders", "order.placed.v1", nil, 1,
		"storm guard: the event has passed through 33 handlers, over the limit of 32")
	if dl.EventID != "hops-33" || dl.CorrelationID != "hops-33" {
		t.Errorf("dead letter names event %q correlation %q, want hops-33 for both", dl.EventID, dl.CorrelationID)
	}
	wantDeadStats(t, rt, bus.ReasonStorm)
	checkJournaled(t, b, dl)
	orders.wait(t, append(good, "hops-32")...)
	orders.exactlyOnce(t, append(good, "hops-32")...)
	if n := orders.times("hops-33"); n != 0 {
		t.Errorf("the handler was given the event over the hop limit %d times", n)
	}
}

func TestEventCycleEndsInOneStormDeadLetter(t *testing.T) {
	t.Parallel()
	b := openMemory(t)
	var calls atomic.Int64
	answer := func(typ string) baton.HandlerFunc {
		return func(ctx context.Context, in baton.Event) ([]baton.Event, error) {
			calls.Add(1)
			out, err := baton.NewEvent(typ, "", map[string]int{"after": in.Hops})
			return []baton.Event{out}, err
		}
	}
	// a answers every pong with a ping, b every ping with a pong.
	rt := run(t, b, bus.Config{},
		baton.Service{Name: "a", Handlers: []baton.Handler{{Type: "b.pong.v1", Func: answer("a.ping.v1")}}},
		baton.Service{Name: "b", Handlers: []baton.Handler{{Type: "a.ping.v1", Func: answer("b.pong.v1")}}})
	publish(t, rt, typedEvent(t, "a.ping.v1", "serve", map[string]int{"after": 0}))

	dl := waitDead(t, b, 1)[0]
	// Hops 0 to 32 were handled; the pong with 33 hops reaches a and stops.
	checkDead(t, dl, "a", "b.pong.v1", nil, 1, "storm guard", "passed through 33 handlers", "is there a cycle of events?")
	if e, err := event.Unmarshal(dl.Body); err != nil || e.Hops != 33 || e.CorrelationID != "serve" {
		t.Errorf("dead letter body: hops %d correlation %q (%v); want the pong with 33 hops of the rally serve", e.Hops, e.CorrelationID, err)
	}
	checkJournaled(t, b, dl)
	wantDeadStats(t, rt, bus.ReasonStorm)
	// The chain is causal and the dead letter emits nothing, so the count
	// is final once the dead letter exists.
	if got := calls.Load(); got != 33 {
		t.Errorf("handler calls: got %d, want 33 (hops 0 to 32)", got)
	}
	h := history(t, b, "serve")
	if n := count(h, store.Handled, "a") + count(h, store.Handled, "b"); n != 33 {
		t.Errorf("journal: %d handled entries, want 33", n)
	}
	wantCount(t, "Handled", rt.Stats().Handled, int64(33))
	if dls := deadLetters(t, b); len(dls) != 1 {
		t.Errorf("dead letters: %d, want exactly 1", len(dls))
	}
}

func TestPanickingHandlerLosesOnlyItsEvent(t *testing.T) {
	t.Parallel()
	const total, bad = 200, 56 // the 57th event
	b := openMemory(t)
	orders := newRecorder()
	fn := func(ctx context.Context, e baton.Event) ([]baton.Event, error) {
		var d struct{ N int }
		if err := e.Decode(&d); err != nil {
			return nil, err
		}
		if d.N == bad {
			var m map[string]int
			m["boom"]++ // a nil map: a real runtime panic
		}
		return orders.handle(ctx, e)
	}
	rt := run(t, b, bus.Config{}, ordersService(fn))
	var good []string
	for i := range total {
		id := fmt.Sprintf("panic-%03d", i)
		if i != bad {
			good = append(good, id)
		}
		publish(t, rt, orderEvent(t, id, i))
	}

	orders.wait(t, good...)
	dl := waitDead(t, b, 1)[0]
	checkDead(t, dl, "orders", "order.placed.v1", nil, 1, "handler panicked: assignment to entry in nil map")
	if want := fmt.Sprintf("panic-%03d", bad); dl.EventID != want || dl.CorrelationID != want {
		t.Errorf("dead letter names event %q correlation %q, want %s for both", dl.EventID, dl.CorrelationID, want)
	}
	wantDeadStats(t, rt, bus.ReasonPanic)
	checkJournaled(t, b, dl)
	orders.exactlyOnce(t, good...)
	wantCount(t, "Handled", rt.Stats().Handled, int64(total-1))
	wantCount(t, "Retried", rt.Stats().Retried, int64(0))
}

// ordersService is the service "orders" with fn for order.placed.v1.
func ordersService(fn baton.HandlerFunc) baton.Service {
	return baton.Service{Name: "orders", Handlers: []baton.Handler{{Type: "order.placed.v1", Func: fn}}}
}

// around publishes good order events, then calls bad, then publishes more,
// and returns the good ids.
func around(t *testing.T, rt *bus.Runtime, bad func()) []string {
	t.Helper()
	var ids []string
	for _, phase := range []string{"before", "after"} {
		if phase == "after" {
			bad()
		}
		for i := range 5 {
			id := fmt.Sprintf("good-%s-%d", phase, i)
			ids = append(ids, id)
			publish(t, rt, orderEvent(t, id, i))
		}
	}
	return ids
}

// raw encodes e in structured mode, filling in what Publish fills in, for
// publishing straight through a transport as raw bytes, as a plain client
// or a replayed dead letter sends them.
func raw(t *testing.T, e baton.Event) bus.Message {
	t.Helper()
	if e.Source == "" {
		e.Source = "raw-publisher"
	}
	if e.CorrelationID == "" {
		e.CorrelationID = e.ID
	}
	body, err := event.Marshal(e)
	if err != nil {
		t.Fatalf("marshal %s: %v", e.ID, err)
	}
	return bus.Message{Event: baton.Event{Type: e.Type, ID: e.ID}, Raw: body}
}
