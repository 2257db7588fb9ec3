package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/store"
)

// A receiver checks each request's signature before trusting it, and
// dedupes by webhook-id, which the signature covers.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"kind":"run.completed"}`)
	sent := time.Unix(1_700_000_000, 0)
	sig, _ := notify.Sign(secret, "01JD5QX8", sent, body)
	h := http.Header{}
	h.Set(notify.HeaderID, "01JD5QX8")
	h.Set(notify.HeaderTimestamp, fmt.Sprint(sent.Unix()))
	h.Set(notify.HeaderSignature, sig)

	fmt.Println(notify.Verify(secret, h, body, sent.Add(time.Minute), 5*time.Minute))
	fmt.Println(notify.Verify(secret, h, []byte(`{"kind":"run.failed"}`), sent, 5*time.Minute))
	fmt.Println(notify.Verify(secret, h, body, sent.Add(time.Hour), 5*time.Minute))
	// Output:
	// <nil>
	// verify webhook signature: signature does not match
	// verify webhook signature: signature timestamp outside the tolerance: signed 1h0m0s ago, tolerance 5m0s
}

func ExampleHub() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	received := make(chan string, 1)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		received <- r.Header.Get(notify.HeaderEvent) + " " + string(body)
	}))
	defer endpoint.Close()

	// The deliveries wait in the store until they are sent: any Baton
	// store, here the embedded one in memory.
	st, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	hub, err := notify.New(notify.Config{Store: st, Webhooks: []notify.Webhook{{URL: endpoint.URL, Secret: secret}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := hub.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	hub.Notify(context.Background(), flow.Notification{
		Kind: flow.RunCompleted,
		Time: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Run:  &store.Run{ID: "run-1", Flow: "order", Key: "ORDER-101", Status: store.RunCompleted},
	})
	fmt.Println(<-received)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(hub.Stop(ctx))
	sent, failed, dropped := hub.Stats()
	fmt.Println(sent, failed, dropped)
	// Output:
	// run.completed {"kind":"run.completed","time":"2025-03-01T12:00:00Z","run":{"id":"run-1","flow":"order","version":0,"key":"ORDER-101","status":"completed","created":"0001-01-01T00:00:00Z","updated":"0001-01-01T00:00:00Z","rev":0}}
	// <nil>
	// 1 0 0
}
