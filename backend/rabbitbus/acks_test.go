package rabbitbus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/bus"
)

func TestAcksSettle(t *testing.T) {
	a := acks{settled: map[uint64]bool{}, every: 4}
	for _, step := range []struct {
		tag       uint64
		unsettled int
		due       bool
		done      uint64
	}{
		{1, 5, false, 1},
		{3, 4, false, 1}, // 2 is still in hand
		{2, 3, false, 3},
		{4, 2, true, 4}, // four settled since the last ack
		{6, 1, false, 4},
		{5, 0, true, 6}, // nothing left in hand
	} {
		if due := a.settle(step.tag, step.unsettled); due != step.due || a.done != step.done {
			t.Fatalf("settle %d: due %v, done %d; want %v, %d", step.tag, due, a.done, step.due, step.done)
		}
		if step.due {
			a.sent = a.done
		}
	}
	if len(a.settled) != 0 {
		t.Errorf("settled tags left over: %v", a.settled)
	}
	for prefetch, want := range map[int]uint64{0: 1, 1: 1, 8: 2, 64: 16, 256: 16} {
		if got := ackEvery(prefetch); got != want {
			t.Errorf("ackEvery(%d) = %d, want %d", prefetch, got, want)
		}
	}
}

// TestBatchedAcksReachTheBroker settles deliveries in batches, out of
// order, and then loses the consumer's channel (as a crash or a network
// fault would) or closes the subscription: the broker must hand back
// exactly the deliveries that were not settled, so every ack that was
// held back for a batch was sent.
func TestBatchedAcksReachTheBroker(t *testing.T) {
	const n = 40
	for _, tc := range []struct {
		name  string
		keep  []int // indexes of the deliveries left unsettled
		close func(*subscription)
	}{
		// Settled in order up to 32: acked at 16 and 32, 33-40 in hand.
		{"channel lost, batches", []int{32, 33, 34, 35, 36, 37, 38, 39}, loseChannel},
		// All settled, shuffled: acked when the last in hand is settled.
		{"channel lost, all settled", nil, loseChannel},
		// One in hand blocks the run after it; Close acks the rest.
		{"close, one in hand", []int{7}, func(s *subscription) { s.Close() }},
		{"close, all settled", nil, func(s *subscription) { s.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t, Config{})
			ctx := t.Context()
			first, err := b.Subscribe(ctx, "acks", []string{"order.>"})
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			msgs := make([]bus.Message, n)
			for i := range msgs {
				msgs[i] = bus.Message{Event: orderPlaced(fmt.Sprintf("m-%02d", i))}
			}
			if err := b.Publish(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			ds := make([]bus.Delivery, n)
			for i := range ds {
				ds[i] = receiveOne(t, first)
			}
			order := rand.Perm(n)
			if tc.keep != nil {
				order = order[:0]
				for i := range n {
					if !slices.Contains(tc.keep, i) {
						order = append(order, i)
					}
				}
			}
			for _, i := range order {
				if err := first.Ack(ctx, ds[i]); err != nil {
					t.Fatalf("ack %s: %v", ds[i].ID, err)
				}
			}
			tc.close(first.(*subscription))
			// A lost channel is restored; what the broker hands back may
			// go to the restored one, which Close hands back in turn.
			first.Close()

			second, err := b.Subscribe(ctx, "acks", []string{"order.>"})
			if err != nil {
				t.Fatal(err)
			}
			defer second.Close()
			var want, got []string
			for _, i := range tc.keep {
				want = append(want, ds[i].ID)
			}
			for {
				wait, cancel := context.WithTimeout(ctx, time.Second)
				d, err := second.Receive(wait)
				cancel()
				if err != nil {
					break
				}
				got = append(got, d.ID)
				second.Ack(ctx, d)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("handed back %v; want the unsettled %v", got, want)
			}
		})
	}
}

// loseChannel closes a subscription's channel under it, without the
// subscription's own Close.
func loseChannel(s *subscription) {
	s.mu.Lock()
	ch := s.ch
	s.mu.Unlock()
	ch.Close()
}
