package bus_test

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
)

func TestRecordRoundTripsTraceContext(t *testing.T) {
	t.Parallel()
	m := bus.Message{Event: baton.Event{ID: "e-1", Source: "s", SpecVersion: "1.0", Type: "order.placed.v1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "rojo=00f067aa0ba902b7",
		Time: time.Unix(1700000000, 5).UTC(), Hops: 2, Data: []byte(`{"n":1}`)}, Meta: map[string]string{"run": "r-1"}}
	got, err := bus.ParseRecord(bus.AppendRecord(nil, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.TraceParent != m.TraceParent || got.TraceState != m.TraceState || got.ID != m.ID || got.Hops != 2 ||
		string(got.Data) != `{"n":1}` || got.Meta["run"] != "r-1" || !got.Time.Equal(m.Time) {
		t.Errorf("record read back as %+v, want %+v", got, m)
	}
}

// A record written before tracestate (version 1: ten strings) is still
// read: queues and outboxes written by the previous version drain.
func TestRecordVersion1IsRead(t *testing.T) {
	t.Parallel()
	b := []byte{1, 0} // version 1, an event
	for _, s := range []string{"e-1", "s", "1.0", "order.placed.v1", "ORDER-1", "application/json", "", "ORDER-1", "",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, 0)               // no time
	b = binary.AppendVarint(b, 3)  // hops
	b = binary.AppendUvarint(b, 0) // no meta
	b = append(b, `{"n":1}`...)    // data
	got, err := bus.ParseRecord(b)
	if err != nil {
		t.Fatalf("a version 1 record: %v", err)
	}
	if got.ID != "e-1" || got.Type != "order.placed.v1" || got.CorrelationID != "ORDER-1" || got.Hops != 3 ||
		got.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || got.TraceState != "" || string(got.Data) != `{"n":1}` {
		t.Errorf("version 1 record read as %+v", got.Event)
	}
}

// FuzzParseRecord reads any bytes as an embedded queue record. It never
// panics, and a record it reads is written by AppendRecord as one that
// reads back the same.
func FuzzParseRecord(f *testing.F) {
	m := bus.Message{Event: baton.Event{ID: "e-1", Source: "s", SpecVersion: "1.0", Type: "order.placed.v1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "rojo=1",
		Time: time.Unix(1700000000, 5).UTC(), Hops: 2, Data: []byte(`{"n":1}`)}, Meta: map[string]string{"run": "r-1"}}
	f.Add(bus.AppendRecord(nil, m))
	f.Add(bus.AppendRecord(nil, bus.Message{Event: baton.Event{ID: "x", Type: "a.v1"}, Raw: []byte(`{"id":`)}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := bus.ParseRecord(b)
		if err != nil {
			return
		}
		again, err := bus.ParseRecord(bus.AppendRecord(nil, got))
		if err != nil {
			t.Fatalf("read %+v, which written reads as %v", got, err)
		}
		if !again.Time.Equal(got.Time) {
			t.Fatalf("time %v became %v", got.Time, again.Time)
		}
		again.Time, got.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("read %+v\nwritten and read again %+v", got, again)
		}
	})
}
