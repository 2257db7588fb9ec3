package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/store"
)

// wireMessage is one message of the bad-input corpus, as a plain client of
// the broker sends it to order.placed.v1, the type a baton worker's payment
// service takes.
type wireMessage struct {
	// name is the message's correlation id, or its id where the
	// correlation id cannot be read back: how its dead letter is found.
	name string
	// order is the order a good event places; "" for a bad message.
	order string
	// reason is what the dead letter's reason must say, and dead the
	// reason it is counted under.
	reason string
	dead   bus.DeadReason
	// refused is what the broker answers a message it will not take,
	// which then never reaches Baton.
	refused string
	send    func(context.Context) error
}

// A running baton worker receives, from a plain AMQP client and a plain
// NATS client, every kind of malformed message issue 11 names, each
// followed by a good event: every bad one is dead-lettered (or refused by
// the broker) with a reason that names the real problem, the dead letters
// and the dead-letter metric count exactly the bad ones by reason, no
// message from a body's bytes gets an id of its own, and every good event,
// an AMQP timestamp time among them, is handled exactly once.
func TestBadInputCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker process per broker; skipped with -short")
	}
	for _, pair := range enginePairs {
		t.Run(pair.name, func(t *testing.T) {
			ns := testNamespace()
			backends := pair.setUp(t, ns)
			dir := t.TempDir()
			w := startProc(t, "payment worker", "baton worker: services payment", append([]string{"worker",
				"--service", "payment", "--data", filepath.Join(dir, "payment"), "--metrics", "127.0.0.1:0"}, backends...)...)
			m := metricsLine.FindStringSubmatch(w.stderr.String())
			if m == nil {
				t.Fatalf("the worker does not say where its metrics are:\n%s", w.stderr.String())
			}
			var corpus []wireMessage
			if strings.HasPrefix(pair.name, "rabbitmq") {
				corpus = amqpCorpus(t, ns)
			} else {
				corpus = natsCorpus(t, ns)
			}
			checkCorpus(t, corpus, backends, ns, dir, m[1])
			w.stop(t)
		})
	}
}

// unnamed stands for the name of a dead letter that has neither an id nor
// a correlation id: a structured-mode message on NATS that does not decode.
const unnamed = "(unnamed)"

// checkCorpus sends the corpus with a good event after each message and
// checks what became of each.
func checkCorpus(t *testing.T, corpus []wireMessage, backends []string, ns, dir, metricsURL string) {
	ctx := t.Context()
	var bad []wireMessage
	good := map[string]bool{}
	for _, msg := range corpus {
		err := msg.send(ctx)
		switch {
		case msg.refused != "":
			if err == nil || !strings.Contains(err.Error(), msg.refused) {
				t.Errorf("%s: the broker answered %v; want a refusal saying %q", msg.name, err, msg.refused)
			}
		case err != nil:
			t.Fatalf("%s: publish: %v", msg.name, err)
		case msg.order != "":
			good[msg.order] = true
		default:
			bad = append(bad, msg)
		}
	}

	_, st, closeBackends, err := openBackends(ctx, flagValue(backends, "--bus"), flagValue(backends, "--store"), "", ns, store.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackends()
	c := &cluster{dir: dir}
	var dead []store.DeadLetter
	waitUntil(t, 2*time.Minute, "every bad message is dead-lettered and every good one charged", func() (bool, string) {
		dead, err = st.ListDead(ctx, "", 100)
		if err != nil {
			return false, err.Error()
		}
		charged := len(c.ledger(t, "payment").Orders(orders.EffectCharged))
		return len(dead) >= len(bad) && charged >= len(good),
			fmt.Sprintf("%d of %d dead letters, %d of %d orders charged", len(dead), len(bad), charged, len(good))
	})

	// Each bad message has one dead letter, whose reason names its problem.
	for _, dl := range dead {
		if e, err := event.Unmarshal(dl.Body); dl.EventID == "forged" || err == nil && e.ID != dl.EventID {
			t.Errorf("dead letter %s of %q holds a body that reads as the event %q", dl.ID, dl.EventID, e.ID)
		}
	}
	wantDead := map[bus.DeadReason]float64{}
	for _, msg := range bad {
		wantDead[msg.dead]++
		i := slices.IndexFunc(dead, func(dl store.DeadLetter) bool {
			return cmp.Or(dl.CorrelationID, dl.EventID, unnamed) == msg.name && strings.Contains(dl.Reason, msg.reason)
		})
		if i < 0 {
			t.Errorf("%s: no dead letter saying %q", msg.name, msg.reason)
			continue
		}
		if dl := dead[i]; dl.Group != "payment" || dl.Type != orders.TypeOrderPlaced {
			t.Errorf("%s: dead letter of %s in group %s; want group payment, type %s", msg.name, dl.Type, dl.Group, orders.TypeOrderPlaced)
		}
		dead = slices.Delete(dead, i, i+1)
	}
	for _, dl := range dead {
		t.Errorf("an unexpected dead letter %q (correlation %q): %s", dl.EventID, dl.CorrelationID, dl.Reason)
	}

	// Every good event is handled exactly once, and nothing else charged.
	l := c.ledger(t, "payment")
	for _, id := range l.Orders(orders.EffectCharged) {
		if !good[id] {
			t.Errorf("order %s was charged, but no good event placed it", id)
		}
	}
	for id := range good {
		if n := l.Count(id, orders.EffectCharged); n != 1 {
			t.Errorf("order %s charged %d times; want once", id, n)
		}
	}

	// The metrics count what the dead letters hold, by reason, and the good
	// events; they are counted once a delivery is settled, a moment after
	// its dead letter or its effect is written.
	want := map[string]float64{
		fmt.Sprintf(`baton_events_handled_total{group="payment",type=%q}`, orders.TypeOrderPlaced): float64(len(good)),
	}
	for _, reason := range []bus.DeadReason{bus.ReasonMalformed, bus.ReasonInvalid, bus.ReasonTooLarge} {
		want[fmt.Sprintf(`baton_events_dead_lettered_total{group="payment",reason=%q}`, reason)] = wantDead[reason]
	}
	waitUntil(t, 30*time.Second, "the metrics count every message", func() (bool, string) {
		metrics := scrapeMetrics(t, metricsURL)
		var off []string
		for _, key := range slices.Sorted(maps.Keys(want)) {
			if metrics[key] != want[key] {
				off = append(off, fmt.Sprintf("%s = %v, want %v", key, metrics[key], want[key]))
			}
		}
		return len(off) == 0, strings.Join(off, "; ")
	})
}

func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// goodOrder is the data of a good order.placed.v1 event.
func goodOrder(t *testing.T, i int) (string, []byte) {
	o := orders.NewOrder(9000 + i)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return o.OrderID, b
}

// oversized is data over the default 1 MiB limit of an event.
func oversized() []byte {
	return []byte(`{"pad":"` + strings.Repeat("x", event.DefaultMaxSize) + `"}`)
}

// amqpCorpus is the corpus as a plain AMQP client publishes it to the
// namespace's exchange: binary mode, or structured mode where it says so.
func amqpCorpus(t *testing.T, ns string) []wireMessage {
	conn, err := amqp.Dial(rabbitTestURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	headers := func(name string) amqp.Table {
		return amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": name, "cloudEvents_source": "plain-amqp",
			"cloudEvents_type": orders.TypeOrderPlaced, "cloudEvents_correlationid": name}
	}
	publish := func(p amqp.Publishing) func(context.Context) error {
		return func(ctx context.Context) error {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, ns, orders.TypeOrderPlaced, false, false, p)
			if err != nil {
				return err
			}
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return fmt.Errorf("the broker did not confirm (%v)", err)
			}
			return nil
		}
	}
	bad := func(name, reason string, dead bus.DeadReason, edit func(amqp.Table), ct string, body []byte) wireMessage {
		h := headers(name)
		edit(h)
		return wireMessage{name: name, reason: reason, dead: dead,
			send: publish(amqp.Publishing{MessageId: name, ContentType: ct, Headers: h, Body: body})}
	}
	keep := func(amqp.Table) {}
	var corpus []wireMessage
	for i, msg := range []wireMessage{
		bad("nil-subject", `header "cloudEvents_subject": subject must be a string, got nil`, bus.ReasonInvalid,
			func(h amqp.Table) { h["cloudEvents_subject"] = nil }, "application/json", []byte(`{}`)),
		bad("table-subject", `header "cloudEvents_subject": subject must be a string, got a table`, bus.ReasonInvalid,
			func(h amqp.Table) { h["cloudEvents_subject"] = amqp.Table{"k": "v"} }, "application/json", []byte(`{}`)),
		bad("specversion-0.3", `unsupported specversion "0.3"`, bus.ReasonInvalid, func(h amqp.Table) {
			// As CloudEvents 0.3's AMQP binding spells the id.
			h["cloudEvents_specversion"] = "0.3"
			delete(h, "cloudEvents_id")
			h["cloudEvents:id"] = "specversion-0.3"
		}, "application/json", []byte(`{}`)),
		bad("text-hops", `header "cloudEvents_hops": "many" is not an integer`, bus.ReasonInvalid,
			func(h amqp.Table) { h["cloudEvents_hops"] = "many" }, "application/json", []byte(`{}`)),
		// Found by its message id: its id header is not read.
		bad("integer-id", `header "cloudEvents_id": id must be a string, got int64`, bus.ReasonInvalid,
			func(h amqp.Table) { h["cloudEvents_id"] = int64(42); delete(h, "cloudEvents_correlationid") }, "application/json", []byte(`{}`)),
		bad("missing-id", `missing required attribute "id"`, bus.ReasonInvalid,
			func(h amqp.Table) { delete(h, "cloudEvents_id") }, "application/json", []byte(`{}`)),
		bad("invalid-json", "malformed JSON", bus.ReasonMalformed, keep, "application/json", []byte(`{"order_id":`)),
		bad("duplicate-keys", `duplicate member "id"`, bus.ReasonInvalid, keep, event.ContentType,
			[]byte(`{"correlationid":"duplicate-keys","specversion":"1.0","id":"duplicate-keys","source":"plain-amqp","type":"order.placed.v1","id":"other"}`)),
		bad("garbage", "is not UTF-8 text", bus.ReasonInvalid, keep, "application/octet-stream", []byte("\x00\xff\xfe\x80garbage")),
		// Too large to read: found by its id, the message id.
		bad("oversized", "over the 1048576-byte limit", bus.ReasonTooLarge, keep, "application/json", oversized()),
	} {
		corpus = append(corpus, msg)
		id, data := goodOrder(t, i)
		h := headers("good-" + id)
		h["cloudEvents_subject"] = id
		if i == 0 {
			// The binding allows an AMQP timestamp for time: it is read.
			h["cloudEvents_time"] = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		}
		corpus = append(corpus, wireMessage{name: "good-" + id, order: id,
			send: publish(amqp.Publishing{ContentType: "application/json", Headers: h, Body: data})})
	}
	return corpus
}

// natsCorpus is the corpus as a plain NATS client publishes it to the
// namespace's stream. NATS headers are text, so the typed headers of the
// AMQP corpus have no counterpart here.
func natsCorpus(t *testing.T, ns string) []wireMessage {
	nc, err := nats.Connect(natsTestURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	subject := ns + ".ev." + orders.TypeOrderPlaced
	headers := func(name string) nats.Header {
		return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {name}, "ce-source": {"plain-nats"},
			"ce-type": {orders.TypeOrderPlaced}, "ce-correlationid": {name}, "content-type": {"application/json"}}
	}
	publish := func(h nats.Header, body []byte) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := js.PublishMsg(&nats.Msg{Subject: subject, Header: h, Data: body}, nats.Context(ctx))
			return err
		}
	}
	bad := func(name, reason string, dead bus.DeadReason, edit func(nats.Header), body []byte) wireMessage {
		h := headers(name)
		edit(h)
		return wireMessage{name: name, reason: reason, dead: dead, send: publish(h, body)}
	}
	keep := func(nats.Header) {}
	structured := func(h nats.Header) { h["content-type"] = []string{event.ContentType} }
	var corpus []wireMessage
	for i, msg := range []wireMessage{
		// Pasted into JSON, this body once became an event with id forged.
		bad("forged-body", "malformed JSON", bus.ReasonMalformed,
			func(h nats.Header) { delete(h, "ce-id") }, []byte(`null,"id":"forged","replyto":"coordinator-x","hops":0`)),
		bad("specversion-0.3", `unsupported specversion "0.3"`, bus.ReasonInvalid,
			func(h nats.Header) { h["ce-specversion"] = []string{"0.3"} }, []byte(`{}`)),
		bad("text-hops", `header "ce-hops": "many" is not an integer`, bus.ReasonInvalid,
			func(h nats.Header) { h["ce-hops"] = []string{"many"} }, []byte(`{}`)),
		bad("missing-id", `missing required attribute "id"`, bus.ReasonInvalid,
			func(h nats.Header) { delete(h, "ce-id") }, []byte(`{}`)),
		bad("invalid-json", "malformed JSON", bus.ReasonMalformed, keep, []byte(`{"order_id":`)),
		bad(unnamed, `duplicate member "id"`, bus.ReasonInvalid, structured,
			[]byte(`{"correlationid":"duplicate-keys","specversion":"1.0","id":"duplicate-keys","source":"plain-nats","type":"order.placed.v1","id":"other"}`)),
		bad(unnamed, "malformed JSON", bus.ReasonMalformed, structured, []byte(`{"correlationid":"invalid-structured",`)),
		bad("garbage", "is not UTF-8 text", bus.ReasonInvalid,
			func(h nats.Header) { h["content-type"] = []string{"application/octet-stream"} }, []byte("\x00\xff\xfe\x80garbage")),
		// The server's max_payload (1 MB by default) is below Baton's
		// limit of an event: the broker refuses it.
		{name: "oversized", refused: "maximum payload exceeded", send: publish(headers("oversized"), oversized())},
	} {
		corpus = append(corpus, msg)
		id, data := goodOrder(t, i)
		h := headers("good-" + id)
		h["ce-subject"] = []string{id}
		corpus = append(corpus, wireMessage{name: "good-" + id, order: id, send: publish(h, data)})
	}
	return corpus
}
