package event_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
)

func ExampleParseType() {
	name, version, err := event.ParseType("order.placed.v2")
	fmt.Println(name, version, err)
	_, _, err = event.ParseType("order.placed")
	fmt.Println(err)
	// Output:
	// order.placed 2 <nil>
	// parse type: bad event type "order.placed": last segment "placed" is not a version v<N> (want name.vN, e.g. "order.placed.v1")
}

func ExampleOutputID() {
	// The same input, handler and index always give the same id, so a
	// redelivered input's outputs are recognised as duplicates.
	fmt.Println(event.OutputID("01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 0))
	fmt.Println(event.OutputID("01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 0))
	fmt.Println(event.OutputID("01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", 1))
	// Output:
	// a2402542c5b79cad1ca6479ae3c5012e
	// a2402542c5b79cad1ca6479ae3c5012e
	// f80fd4dfba504e606f003994e685f842
}

func ExampleMarshal() {
	e, _ := baton.NewEvent("order.placed.v1", "ORDER-101", map[string]any{"total": 39.98})
	e.ID, e.Source, e.CorrelationID = "1", "/services/shop", "ORDER-101"
	e.Time = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	b, err := event.Marshal(e)
	fmt.Println(string(b), err)

	back, err := event.Unmarshal(b)
	fmt.Println(back.Type, back.Subject, string(back.Data), err)
	// Output:
	// {"specversion":"1.0","id":"1","source":"/services/shop","type":"order.placed.v1","subject":"ORDER-101","time":"2025-03-14T15:09:26Z","datacontenttype":"application/json","correlationid":"ORDER-101","data":{"total":39.98}} <nil>
	// order.placed.v1 ORDER-101 {"total":39.98} <nil>
}

func ExampleBinding() {
	e := baton.Event{ID: "1", Source: "/s", SpecVersion: "1.0", Type: "order.placed.v1", Hops: 2,
		DataContentType: "application/json", Data: json.RawMessage(`{"total":39.98}`)}
	// A transport sets its native headers directly.
	h := map[string][]string{} // a nats.Header
	event.NATS.Headers(&e, func(k, v string) { h[k] = []string{v} })
	h["content-type"] = []string{e.DataContentType}
	body := event.Body(&e)
	fmt.Println(h["ce-type"], h["ce-hops"], h["content-type"], string(body))

	// And reads them back the same way, here as a plain client sent them.
	r := event.NATS.Reader()
	for k, v := range map[string]string{
		"Ce-Id": "1", "Ce-Source": "/s", "Ce-Specversion": "1.0", "Ce-Type": "order.placed.v1",
		"Content-Type": "application/json",
	} {
		r.Header(k, v)
	}
	back, err := r.Event(body)
	fmt.Println(back.ID, back.Type, string(back.Data), err)
	// Output:
	// [order.placed.v1] [2] [application/json] {"total":39.98}
	// 1 order.placed.v1 {"total":39.98} <nil>
}

func ExampleRegistry_Prepare() {
	r := event.NewRegistry()
	// v1 had "amount" in euros; v2 has "cents".
	err := r.Upcaster("order.placed.v1", "order.placed.v2", func(data json.RawMessage) (json.RawMessage, error) {
		var v1 struct{ Amount float64 }
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(map[string]int64{"cents": int64(v1.Amount*100 + 0.5)})
	})
	if err != nil {
		panic(err)
	}
	err = r.Schema("order.placed.v2", []byte(`{"type":"object","required":["cents"],"properties":{"cents":{"type":"integer","minimum":1}}}`))
	if err != nil {
		panic(err)
	}

	old := baton.Event{ID: "1", Source: "/s", SpecVersion: "1.0", Type: "order.placed.v1", Data: json.RawMessage(`{"amount":12.5}`)}
	e, err := r.Prepare(old, "order.placed.v2")
	fmt.Println(e.Type, string(e.Data), err)

	old.Data = json.RawMessage(`{"amount":0}`)
	_, err = r.Prepare(old, "order.placed.v2")
	fmt.Println(err)

	old.Type = "order.placed.v3"
	_, err = r.Prepare(old, "order.placed.v2")
	fmt.Println(err)
	// Output:
	// order.placed.v2 {"cents":1250} <nil>
	// prepare event: data of order.placed.v2 1 does not match its schema: at '/cents': minimum: got 0, want 1
	// prepare event: unsupported version 3 of "order.placed" (this handler takes v2; upcasters exist from v1)
}
