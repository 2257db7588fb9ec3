package conformance

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/store"
)

// TestDeliveries runs the suite of the webhook outbox (store.Deliveries),
// which every Baton store implements. open returns a fresh, isolated store
// and registers its cleanup; it is called once per case.
func TestDeliveries(t *testing.T, open func(t *testing.T) store.Deliveries) {
	cases := []struct {
		name string
		run  func(t *testing.T, st store.Deliveries)
	}{
		{"RoundTrip", testDeliveryRoundTrip},
		{"Order", testDeliveryOrder},
		{"ClaimHides", testDeliveryClaimHides},
		{"LapsedClaimReturns", testDeliveryLapsedClaim},
		{"Retry", testDeliveryRetry},
		{"Delete", testDeliveryDelete},
		{"AddExisting", testDeliveryAddExisting},
		{"ClaimRace", testDeliveryClaimRace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

const deliveryLease = time.Minute

// newDelivery is a delivery to webhook, due at next.
func newDelivery(webhook string, next time.Time) store.Delivery {
	id := unique("dl-")
	return store.Delivery{ID: id, Webhook: webhook, Kind: "run.completed", Body: []byte(`{"kind":"run.completed","id":"` + id + `"}`),
		Created: next, Next: next}
}

func addDeliveries(t *testing.T, st store.Deliveries, ds ...store.Delivery) {
	t.Helper()
	if err := st.AddDeliveries(t.Context(), ds...); err != nil {
		t.Fatalf("add %d deliveries: %v", len(ds), err)
	}
}

func claimDeliveries(t *testing.T, st store.Deliveries, webhook string, now time.Time, limit int) []store.Delivery {
	t.Helper()
	got, err := st.ClaimDeliveries(t.Context(), webhook, now, limit, deliveryLease)
	if err != nil {
		t.Fatalf("claim deliveries of %s at %s: %v", webhook, now.Format(time.StampMilli), err)
	}
	return got
}

func deliveryIDs(ds []store.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

func countDeliveries(t *testing.T, st store.Deliveries) int64 {
	t.Helper()
	n, err := st.CountDeliveries(t.Context())
	if err != nil {
		t.Fatalf("count deliveries: %v", err)
	}
	return n
}

// testDeliveryRoundTrip: a claim returns what was added, field for field,
// with Next moved to the end of the claim; only the webhook's own.
func testDeliveryRoundTrip(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh, other := unique("wh-"), unique("wh-")
	d := newDelivery(wh, now)
	d.Created = now.Add(-time.Hour)
	d.Attempts, d.LastError = 2, "answered 503 Service Unavailable"
	addDeliveries(t, st, d, newDelivery(other, now))
	if n := countDeliveries(t, st); n != 2 {
		t.Errorf("count after adding 2: %d", n)
	}
	got := claimDeliveries(t, st, wh, now, 10)
	if len(got) != 1 {
		t.Fatalf("claim of %s returned %v, want only %s (the other belongs to %s)", wh, deliveryIDs(got), d.ID, other)
	}
	g := got[0]
	want := d
	want.Next = now.Add(deliveryLease)
	if g.ID != want.ID || g.Webhook != want.Webhook || g.Kind != want.Kind || string(g.Body) != string(want.Body) ||
		!g.Created.Equal(want.Created) || g.Attempts != want.Attempts || !g.Next.Equal(want.Next) || g.LastError != want.LastError {
		t.Errorf("claimed\n %+v\nwant\n %+v", g, want)
	}
}

// testDeliveryOrder: due deliveries come earliest Next first, then by ID,
// at most limit of them; those not yet due stay.
func testDeliveryOrder(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	var ds []store.Delivery
	for i := range 6 {
		ds = append(ds, newDelivery(wh, now.Add(time.Duration(i/2)*time.Second)))
	}
	ds = append(ds, newDelivery(wh, now.Add(time.Hour))) // not due
	want := slices.Clone(ds[:6])
	slices.SortFunc(want, func(a, b store.Delivery) int {
		if c := a.Next.Compare(b.Next); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	// Added in reverse, one call each, so insertion order is not the answer.
	for _, d := range slices.Backward(ds) {
		addDeliveries(t, st, d)
	}
	at := now.Add(3 * time.Second)
	first := claimDeliveries(t, st, wh, at, 4)
	rest := claimDeliveries(t, st, wh, at, 10)
	if got, w := deliveryIDs(first), deliveryIDs(want[:4]); !slices.Equal(got, w) {
		t.Errorf("first claim (limit 4): %v, want %v", got, w)
	}
	if got, w := deliveryIDs(rest), deliveryIDs(want[4:]); !slices.Equal(got, w) {
		t.Errorf("second claim: %v, want %v (the one due in an hour stays)", got, w)
	}
}

// testDeliveryClaimHides: a claimed delivery is not claimed again until the
// lease lapses.
func testDeliveryClaimHides(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	d := newDelivery(wh, now)
	addDeliveries(t, st, d)
	if got := claimDeliveries(t, st, wh, now, 10); len(got) != 1 {
		t.Fatalf("first claim: %v, want [%s]", deliveryIDs(got), d.ID)
	}
	if got := claimDeliveries(t, st, wh, now.Add(deliveryLease-time.Second), 10); len(got) != 0 {
		t.Errorf("claimed again within the lease: %v", deliveryIDs(got))
	}
	if n := countDeliveries(t, st); n != 1 {
		t.Errorf("count with one claimed: %d, want 1", n)
	}
}

// testDeliveryLapsedClaim: a claim not settled (its holder crashed) lapses,
// and the delivery is claimed again, as it was.
func testDeliveryLapsedClaim(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	d := newDelivery(wh, now)
	addDeliveries(t, st, d)
	claimDeliveries(t, st, wh, now, 10)
	later := now.Add(deliveryLease)
	got := claimDeliveries(t, st, wh, later, 10)
	if len(got) != 1 || got[0].ID != d.ID || string(got[0].Body) != string(d.Body) || got[0].Attempts != 0 {
		t.Fatalf("claim after the lease lapsed: %+v, want %s again with 0 attempts", got, d.ID)
	}
	if !got[0].Next.Equal(later.Add(deliveryLease)) {
		t.Errorf("claimed again with Next %s, want %s", got[0].Next, later.Add(deliveryLease))
	}
}

// testDeliveryRetry: a retry ends the claim and keeps the delivery until
// its next attempt's time, with the attempts and the error saved.
func testDeliveryRetry(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	d := newDelivery(wh, now)
	addDeliveries(t, st, d)
	c := claimDeliveries(t, st, wh, now, 10)[0]
	c.Attempts, c.Next, c.LastError = 1, now.Add(10*time.Second), "answered 500 Internal Server Error"
	if err := st.RetryDelivery(t.Context(), c); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := claimDeliveries(t, st, wh, now.Add(9*time.Second), 10); len(got) != 0 {
		t.Errorf("claimed before its next attempt's time: %v", deliveryIDs(got))
	}
	got := claimDeliveries(t, st, wh, now.Add(10*time.Second), 10)
	if len(got) != 1 || got[0].Attempts != 1 || got[0].LastError != c.LastError || string(got[0].Body) != string(d.Body) {
		t.Fatalf("claim at its next attempt's time: %+v, want %s with 1 attempt and its error", got, d.ID)
	}
	// A retry that ends the claim early (a sender stopping) makes it
	// claimable at once.
	got[0].Next = now.Add(10 * time.Second)
	if err := st.RetryDelivery(t.Context(), got[0]); err != nil {
		t.Fatalf("release: %v", err)
	}
	if got := claimDeliveries(t, st, wh, now.Add(10*time.Second), 10); len(got) != 1 {
		t.Errorf("claim after an early release: %v, want [%s]", deliveryIDs(got), d.ID)
	}
}

// testDeliveryDelete: a deleted delivery is gone for good, even for a late
// retry by a sender whose claim had lapsed.
func testDeliveryDelete(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	d, e := newDelivery(wh, now), newDelivery(wh, now)
	addDeliveries(t, st, d, e)
	claimed := claimDeliveries(t, st, wh, now, 10)
	if len(claimed) != 2 {
		t.Fatalf("claim: %v, want 2", deliveryIDs(claimed))
	}
	if err := st.DeleteDelivery(t.Context(), d.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := st.DeleteDelivery(t.Context(), unique("never-")); err != nil {
		t.Errorf("delete an unknown id: %v, want no error", err)
	}
	if n := countDeliveries(t, st); n != 1 {
		t.Errorf("count after deleting one of 2: %d", n)
	}
	for _, c := range claimed {
		if c.ID == d.ID {
			c.Next = now
			if err := st.RetryDelivery(t.Context(), c); err != nil {
				t.Errorf("retry a deleted delivery: %v, want no error", err)
			}
		}
	}
	got := claimDeliveries(t, st, wh, now.Add(2*deliveryLease), 10)
	if !slices.Equal(deliveryIDs(got), []string{e.ID}) {
		t.Errorf("claim after the lease: %v, want only %s (%s was deleted)", deliveryIDs(got), e.ID, d.ID)
	}
}

// testDeliveryAddExisting: adding an id already stored changes nothing.
func testDeliveryAddExisting(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	d := newDelivery(wh, now)
	addDeliveries(t, st, d)
	again := d
	again.Body = []byte(`{"other":true}`)
	again.Next = now.Add(-time.Hour)
	addDeliveries(t, st, again)
	if n := countDeliveries(t, st); n != 1 {
		t.Errorf("count after adding one id twice: %d", n)
	}
	got := claimDeliveries(t, st, wh, now, 10)
	if len(got) != 1 || string(got[0].Body) != string(d.Body) {
		t.Errorf("claim: %+v, want the first %s", got, d.ID)
	}
}

// testDeliveryClaimRace: senders claiming at once each get their own
// deliveries; every one is claimed once.
func testDeliveryClaimRace(t *testing.T, st store.Deliveries) {
	now := stamp(time.Now())
	wh := unique("wh-")
	const n = 60
	var ds []store.Delivery
	for range n {
		ds = append(ds, newDelivery(wh, now))
	}
	addDeliveries(t, st, ds...)
	var (
		mu      sync.Mutex
		counts  = map[string]int{}
		claimed int // in all, which ends the race should claims not hide
		wg      sync.WaitGroup
		errs    = make(chan error, 4)
	)
	for range 4 {
		wg.Go(func() {
			for {
				got, err := st.ClaimDeliveries(t.Context(), wh, now, 7, deliveryLease)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, d := range got {
					counts[d.ID]++
				}
				claimed += len(got)
				over := len(got) == 0 || claimed > 2*n
				mu.Unlock()
				if over {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("claim: %v", err)
	}
	var twice []string
	for id, c := range counts {
		if c > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", id, c))
		}
	}
	if len(counts) != n || len(twice) > 0 {
		t.Errorf("%d of %d deliveries claimed; claimed more than once: %v", len(counts), n, twice)
	}
}
