package event

import (
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := Validate(sample()); err != nil {
		t.Fatalf("sample: %v", err)
	}
	minimal := baton.Event{ID: "1", Source: "s", SpecVersion: "1.0", Type: "a.v1"}
	if err := Validate(minimal); err != nil {
		t.Fatalf("minimal: %v", err)
	}
	cases := []struct {
		name string
		edit func(*baton.Event)
		want string
	}{
		{"no id", func(e *baton.Event) { e.ID = "" }, `missing required attribute "id"`},
		{"no source", func(e *baton.Event) { e.Source = "" }, `missing required attribute "source"`},
		{"no specversion", func(e *baton.Event) { e.SpecVersion = "" }, `missing required attribute "specversion"`},
		{"old specversion", func(e *baton.Event) { e.SpecVersion = "0.3" }, `unsupported specversion "0.3": Baton reads CloudEvents "1.0"`},
		// The version is the reason, not what an event of another version
		// lacks: 0.3's AMQP binding spells its headers differently.
		{"old specversion, no id", func(e *baton.Event) { e.SpecVersion, e.ID, e.Source = "0.3", "", "" }, `unsupported specversion "0.3"`},
		{"no type", func(e *baton.Event) { e.Type = "" }, `missing required attribute "type"`},
		{"unversioned type", func(e *baton.Event) { e.Type = "order.placed" }, `invalid attribute "type"`},
		{"negative hops", func(e *baton.Event) { e.Hops = -1 }, `invalid attribute "hops": -1 is negative`},
		{"newline in subject", func(e *baton.Event) { e.Subject = "a\nb" }, `invalid attribute "subject": control character U+000A at byte 1`},
		{"NUL in id", func(e *baton.Event) { e.ID = "a\x00" }, `invalid attribute "id": control character U+0000`},
		{"DEL in source", func(e *baton.Event) { e.Source = "a\x7f" }, `invalid attribute "source": control character U+007F`},
		{"C1 control in traceparent", func(e *baton.Event) { e.TraceParent = "x\u0085" }, `invalid attribute "traceparent": control character U+0085`},
		{"bad UTF-8 in correlationid", func(e *baton.Event) { e.CorrelationID = "a\xff" }, `invalid attribute "correlationid": invalid UTF-8 at byte 1`},
		{"year 10000", func(e *baton.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, `invalid attribute "time": year 10000`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := sample()
			c.edit(&e)
			wantInvalid(t, Validate(e), c.want)
		})
	}
	// Letters beyond the C1 block are fine.
	e := sample()
	e.Subject = "Bestellung für Zoë \u00a0 🍕 \"quoted\" \\"
	if err := Validate(e); err != nil {
		t.Errorf("unicode subject: %v", err)
	}
}

func TestCheckSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ n, max int }{{0, 0}, {DefaultMaxSize, 0}, {DefaultMaxSize, -1}, {10, 10}, {5, 10}} {
		if err := CheckSize(c.n, c.max); err != nil {
			t.Errorf("CheckSize(%d, %d) = %v, want nil", c.n, c.max, err)
		}
	}
	wantInvalid(t, CheckSize(DefaultMaxSize+1, 0),
		"event is 1048577 bytes, over the 1048576-byte limit (raise MaxEventSize to allow it)")
	wantInvalid(t, CheckSize(11, 10), "event is 11 bytes, over the 10-byte limit")
}
