package event

import (
	"encoding/json"
	"testing"

	"github.com/batonhq/baton"
)

func BenchmarkMarshal(b *testing.B) {
	e := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	data, err := Marshal(sample())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

// The encoding/json baselines that Marshal and Unmarshal replace.
func BenchmarkMarshalStd(b *testing.B) {
	e := sample()
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(e); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalStd(b *testing.B) {
	data, err := Marshal(sample())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var e baton.Event
		if err := json.Unmarshal(data, &e); err != nil {
			b.Fatal(err)
		}
		if err := Validate(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOutputID(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		OutputID("01J9ZQ4Y7C3V8K2M5N6P7Q8R9S", "payments.charge", i&7)
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewID()
	}
}

func BenchmarkToBinary(b *testing.B) {
	e := sample()
	b.ReportAllocs()
	for b.Loop() {
		toBinary(e, AMQPPrefix)
	}
}

func BenchmarkFromBinary(b *testing.B) {
	headers, body := toBinary(sample(), NATSPrefix)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fromBinary(headers, NATSPrefix, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrepareUpcast(b *testing.B) {
	r := NewRegistry()
	if err := r.Upcaster("order.placed.v1", "order.placed.v2", func(d json.RawMessage) (json.RawMessage, error) { return d, nil }); err != nil {
		b.Fatal(err)
	}
	e := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Prepare(e, "order.placed.v2"); err != nil {
			b.Fatal(err)
		}
	}
}
