package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

// sample is a valid event with every attribute set.
func sample() baton.Event {
	return baton.Event{
		ID:              "01J9ZQ4Y7C3V8K2M5N6P7Q8R9S",
		Source:          "/services/orders",
		SpecVersion:     "1.0",
		Type:            "order.placed.v1",
		Subject:         "ORDER-101",
		Time:            time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		DataContentType: "application/json",
		DataSchema:      "https://schemas.example.com/order.placed.v1.json",
		CorrelationID:   "ORDER-101",
		CausationID:     "9f86d081884c7d659a2feaa0c55ad015",
		TraceParent:     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState:      "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		Hops:            3,
		Data:            json.RawMessage(`{"order":"ORDER-101","lines":[{"sku":"A-1","qty":2,"price":19.99}],"total":39.98,"note":null,"gift":false}`),
	}
}

// sameEvent fails t unless a and b carry the same attributes and data.
func sameEvent(t *testing.T, got, want baton.Event) {
	t.Helper()
	type attrs struct {
		ID, Source, SpecVersion, Type, Subject, DataContentType, DataSchema string
		CorrelationID, CausationID, TraceParent, TraceState                 string
		Hops                                                                int
	}
	of := func(e baton.Event) attrs {
		return attrs{e.ID, e.Source, e.SpecVersion, e.Type, e.Subject, e.DataContentType, e.DataSchema,
			e.CorrelationID, e.CausationID, e.TraceParent, e.TraceState, e.Hops}
	}
	if g, w := of(got), of(want); g != w {
		t.Errorf("attributes:\n got %+v\nwant %+v", g, w)
	}
	if !got.Time.Equal(want.Time) {
		t.Errorf("time: got %v, want %v", got.Time, want.Time)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("data: got %s, want %s", got.Data, want.Data)
	}
}

// wantInvalid fails t unless err is a *baton.Error with code Invalid whose
// text contains every one of parts.
func wantInvalid(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	var be *baton.Error
	if !errors.As(err, &be) || be.Code != baton.Invalid {
		t.Fatalf("error %q (%T) is not a *baton.Error with code invalid", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
