package flow

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/batonhq/baton/store"
)

// Trim bounds what comes from outside, cutting texts at a character
// boundary, leaving out an input a cut would break, and saying what it did;
// a notification within the limits is left as it is.
func TestNotificationTrim(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("é", NotificationFieldLimit) // 2 bytes each
	req := &StartRequest{Flow: "order", Key: big, Input: json.RawMessage(`"` + strings.Repeat("x", 2*NotificationFieldLimit) + `"`)}
	dead := &store.DeadLetter{Body: []byte(strings.Repeat("b", 3*NotificationFieldLimit))}
	n := Notification{Kind: InputInvalid, Message: big, Request: req, Dead: dead}.Trim()
	if len(n.Message) > NotificationFieldLimit || !utf8.ValidString(n.Message) || !strings.HasSuffix(n.Message, "…") {
		t.Errorf("message: %d bytes, valid UTF-8 %v", len(n.Message), utf8.ValidString(n.Message))
	}
	if len(n.Request.Key) > NotificationFieldLimit || n.Request.Input != nil || n.Request.Flow != "order" {
		t.Errorf("request: key %d bytes, input %d bytes, flow %q", len(n.Request.Key), len(n.Request.Input), n.Request.Flow)
	}
	if len(n.Dead.Body) != NotificationFieldLimit {
		t.Errorf("dead letter body: %d bytes", len(n.Dead.Body))
	}
	if len(req.Key) != len(big) || len(dead.Body) != 3*NotificationFieldLimit {
		t.Error("Trim changed the caller's request or dead letter")
	}
	want := []string{"message: cut", "request.key: cut", "request.input: 8194 bytes left out", "dead_letter.body: cut"}
	if len(n.Trimmed) != len(want) {
		t.Fatalf("trimmed %q, want %d lines", n.Trimmed, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(n.Trimmed[i], w) {
			t.Errorf("trimmed[%d] = %q, want %q...", i, n.Trimmed[i], w)
		}
	}
	small := Notification{Kind: InputInvalid, Message: "no key", Request: &StartRequest{Flow: "order", Input: json.RawMessage(`{}`)}}
	if got := small.Trim(); got.Trimmed != nil || got.Request != small.Request || got.Message != small.Message {
		t.Errorf("a small notification was changed: %+v", got)
	}
}
