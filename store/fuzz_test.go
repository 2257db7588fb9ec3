package store_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
)

// FuzzRun reads any document as a stored run, as the embedded, Redis and
// PostgreSQL stores do (encoding/json into store.Run), and writes what it
// reads with AppendRun, as they do on every transition. It never panics, and
// what AppendRun writes reads back as the same run, as encoding/json's own
// encoding does.
func FuzzRun(f *testing.F) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	r := store.Run{ID: "r-1", Flow: "order", Version: 1, Key: "o-1", Status: store.RunRunning, Created: at, Updated: at, Rev: 3,
		Wake: at, Input: json.RawMessage(`{"a":[1,{"b":null}]}`), Result: json.RawMessage(`"ok"`),
		Steps: map[string]*store.StepState{"charge": {Status: store.StepCompleted, Attempts: 2, Started: at, Due: at, Backoff: true, Branch: 1}}}
	f.Add(store.AppendRun(nil, &r))
	f.Add([]byte(`{"id":"r","steps":{"a":null},"created":"2026-01-02T03:04:05+01:00","input":null}`))
	f.Add([]byte(`{"id":"\u00e9\ud800","version":-1,"rev":9223372036854775807,"data":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got store.Run
		if json.Unmarshal(b, &got) != nil {
			return
		}
		var fast, std store.Run
		out := store.AppendRun(nil, &got)
		if err := json.Unmarshal(out, &fast); err != nil {
			t.Fatalf("AppendRun wrote %s, which does not read: %v", out, err)
		}
		want, _ := json.Marshal(got)
		if err := json.Unmarshal(want, &std); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normal(fast), normal(std)) {
			t.Fatalf("AppendRun's %s reads back as\n%+v\nencoding/json's %s as\n%+v", out, fast, want, std)
		}
	})
}
