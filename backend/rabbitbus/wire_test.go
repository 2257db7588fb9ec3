package rabbitbus

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/batonhq/baton"
)

// headerCase is a message a plain AMQP client publishes with one
// application property changed, and what Baton makes of it: the reason it
// is refused with, or, when reason is "", the event it reads.
type headerCase struct {
	name   string
	edit   func(amqp.Table)
	reason string
	check  func(baton.Event) bool
}

// Each AMQP type of an application property is mapped deliberately: what
// the CloudEvents AMQP binding allows is read (a timestamp time, an integer
// hops, UTF-8 bytes for a string), and anything else is refused with a
// reason that names the header, the attribute and the type received.
var headerCases = []headerCase{
	{"timestamp-time", func(h amqp.Table) {
		h["cloudEvents_time"] = time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600))
	}, "",
		func(e baton.Event) bool { return e.Time.Equal(time.Date(2030, 1, 2, 2, 4, 5, 0, time.UTC)) }},
	{"integer-hops", func(h amqp.Table) { h["cloudEvents_hops"] = int32(3) }, "", func(e baton.Event) bool { return e.Hops == 3 }},
	{"bytes-subject", func(h amqp.Table) { h["cloudEvents_subject"] = []byte("ORDER-9") }, "", func(e baton.Event) bool { return e.Subject == "ORDER-9" }},
	{"nil-subject", func(h amqp.Table) { h["cloudEvents_subject"] = nil },
		`header "cloudEvents_subject": subject must be a string, got nil (an AMQP void)`, nil},
	{"table-subject", func(h amqp.Table) { h["cloudEvents_subject"] = amqp.Table{"k": "v"} },
		`header "cloudEvents_subject": subject must be a string, got a table`, nil},
	{"array-correlationid", func(h amqp.Table) { h["cloudEvents_correlationid"] = []any{"a", "b"} },
		`header "cloudEvents_correlationid": correlationid must be a string, got an array`, nil},
	{"integer-id", func(h amqp.Table) { h["cloudEvents_id"] = int64(42) },
		`header "cloudEvents_id": id must be a string, got int64`, nil},
	{"boolean-type", func(h amqp.Table) { h["cloudEvents_type"] = true },
		`header "cloudEvents_type": type must be a string, got a boolean`, nil},
	{"timestamp-source", func(h amqp.Table) { h["cloudEvents_source"] = time.Now() },
		`header "cloudEvents_source": source must be a string, got a timestamp`, nil},
	{"float-hops", func(h amqp.Table) { h["cloudEvents_hops"] = 1.5 },
		`header "cloudEvents_hops": hops must be an integer or a string of one, got float64`, nil},
	{"text-hops", func(h amqp.Table) { h["cloudEvents_hops"] = "three" },
		`header "cloudEvents_hops": "three" is not an integer`, nil},
	{"table-time", func(h amqp.Table) { h["cloudEvents_time"] = amqp.Table{} },
		`header "cloudEvents_time": time must be an AMQP timestamp or an RFC 3339 string, got a table`, nil},
	{"specversion-0.3", func(h amqp.Table) {
		// As a CloudEvents 0.3 sender spells it: its id is not one Baton reads.
		h["cloudEvents_specversion"] = "0.3"
		delete(h, "cloudEvents_id")
		h["cloudEvents:id"] = "specversion-0.3"
	}, `unsupported specversion "0.3": Baton reads CloudEvents "1.0"`, nil},
	{"table-metadata", func(h amqp.Table) { h["baton-replyto"] = amqp.Table{"group": "x"} },
		`header "baton-replyto": Baton's metadata must be a string, got a table`, nil},
	{"unknown-extension-table", func(h amqp.Table) { h["cloudEvents_myext"] = amqp.Table{"k": 1} }, "",
		func(e baton.Event) bool { return e.ID == "unknown-extension-table" }},
}

func plainHeaders(id string) amqp.Table {
	return amqp.Table{"cloudEvents_specversion": "1.0", "cloudEvents_id": id, "cloudEvents_source": "shop",
		"cloudEvents_type": "order.placed.v1", "cloudEvents_correlationid": "ORDER-7"}
}

func TestPlainClientHeaderTypes(t *testing.T) {
	b := open(t, Config{})
	sub, err := b.Subscribe(t.Context(), "billing", []string{"order.*.v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch := plainChannel(t)
	cases := map[string]headerCase{}
	for _, c := range headerCases {
		h := plainHeaders(c.name)
		c.edit(h)
		pub := amqp.Publishing{MessageId: c.name, ContentType: "application/json", Headers: h, Body: []byte(`{"n":1}`)}
		if err := ch.Publish(b.cfg.Namespace, "order.placed.v1", false, false, pub); err != nil {
			t.Fatal(err)
		}
		cases[c.name] = c
	}
	for range headerCases {
		d := receiveOne(t, sub)
		c, ok := cases[d.ID]
		if !ok {
			t.Fatalf("received %q (%v); want one of the cases, by its id or message id", d.ID, d.Err)
		}
		delete(cases, d.ID)
		switch {
		case c.reason == "" && d.Err != nil:
			t.Errorf("%s: refused with %v; want it read", c.name, d.Err)
		case c.reason == "" && !c.check(d.Event):
			t.Errorf("%s: read as %+v", c.name, d.Event)
		case c.reason != "" && (d.Err == nil || !strings.Contains(d.Err.Error(), c.reason)):
			t.Errorf("%s: error %v; want one saying %s", c.name, d.Err, c.reason)
		case c.reason != "" && (baton.ErrorCode(d.Err) != baton.Invalid || d.Type != "order.placed.v1" || string(d.Raw) != `{"n":1}`):
			t.Errorf("%s: code %s, type %q, body %q; want invalid, the type and the body as sent, for the dead letter",
				c.name, baton.ErrorCode(d.Err), d.Type, d.Raw)
		}
		if err := sub.Ack(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
}
