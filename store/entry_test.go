package store_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
)

func encode(e store.Entry) []byte { return store.AppendEntry(nil, &e) }

// TestEntryEncoding checks that an entry reads back from the binary
// encoding as it reads back from JSON, which the journal wrote before.
func TestEntryEncoding(t *testing.T) {
	at := time.Date(2026, 12, 6, 23, 30, 1, 123456789, time.UTC)
	for _, e := range []store.Entry{
		{},
		{Time: at, CorrelationID: "o-1", Outcome: store.Handled, EventID: "e-1", EventType: "order.placed.v1",
			Subject: "o-1", Source: "shop", Group: "payment", Attempt: 3, Duration: 1500 * time.Microsecond,
			Error: "card declined: \"x\"\n", Caused: []string{"c-1", "", "c-3"}, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Time: at.In(time.FixedZone("", 3600+1800)), Outcome: store.Failed, Attempt: -1, Duration: -time.Second},
		{Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Outcome: store.Published, Caused: []string{}},
	} {
		old, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := store.ParseEntry(7, old)
		if err != nil {
			t.Fatalf("old JSON entry %s: %v", old, err)
		}
		if want.Seq != 7 {
			t.Errorf("old JSON entry: seq %d, want 7", want.Seq)
		}
		v := encode(e)
		if len(v) > store.EntrySize(&e) {
			t.Errorf("encoding of %+v is %d bytes, more than EntrySize's %d", e, len(v), store.EntrySize(&e))
		}
		got, err := store.ParseEntry(7, v)
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if len(want.Caused) == 0 {
			want.Caused = nil // JSON omits an empty list
		}
		if !got.Time.Equal(want.Time) || got.Time.Location().String() != want.Time.Location().String() {
			t.Errorf("time %v, want %v as JSON reads it back", got.Time, want.Time)
		}
		_, gotOff := got.Time.Zone()
		_, wantOff := want.Time.Zone()
		if gotOff != wantOff {
			t.Errorf("zone offset %d, want %d", gotOff, wantOff)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("binary round trip\n got %+v\nwant %+v", got, want)
		}
	}
}

// TestEntryCorrupt checks that a damaged entry is an error, never a panic
// or a half-read entry.
func TestEntryCorrupt(t *testing.T) {
	v := encode(store.Entry{Time: time.Now(), CorrelationID: "o-1", Outcome: store.Handled, Caused: []string{"a", "b"}})
	for n := range len(v) {
		if _, err := store.ParseEntry(1, v[:n]); err == nil {
			t.Errorf("entry cut to %d of %d bytes decoded without an error", n, len(v))
		}
	}
	if _, err := store.ParseEntry(1, append(append([]byte(nil), v...), 0)); err == nil {
		t.Error("entry with a trailing byte decoded without an error")
	}
	if _, err := store.ParseEntry(1, []byte{9, 0, 0}); err == nil {
		t.Error("entry of an unknown version decoded without an error")
	}
	if _, err := store.ParseEntry(1, []byte(`{"seq":`)); err == nil {
		t.Error("truncated JSON entry decoded without an error")
	}
}

// BenchmarkJournalEntry encodes and decodes a handler's journal entry as
// the journal did (JSON) and does (binary), side by side:
//
//	go test -run '^$' -bench JournalEntry ./store
func BenchmarkJournalEntry(b *testing.B) {
	e := store.Entry{Time: time.Now(), CorrelationID: "ord-000123", Outcome: store.Handled, EventID: "8c5f3b1e-payment-0",
		EventType: "payment.processed.v1", Subject: "ord-000123", Source: "payment", Group: "payment", Attempt: 1,
		Duration: 41 * time.Microsecond, Caused: []string{"1d9a6b20c2f54a9e"}, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	b.Run("json", func(b *testing.B) {
		var v []byte
		for b.Loop() {
			v, _ = json.Marshal(e)
			var got store.Entry
			if err := json.Unmarshal(v, &got); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(v)), "bytes")
	})
	b.Run("binary", func(b *testing.B) {
		var v []byte
		for b.Loop() {
			v = encode(e)
			if _, err := store.ParseEntry(1, v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(v)), "bytes")
	})
}
