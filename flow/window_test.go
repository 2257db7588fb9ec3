package flow_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// slowDisk is the embedded backend with a disk that reports no save of a
// reply's transition durable until release is closed (the writes are
// made; only their report waits). taken counts the saves handed to it.
type slowDisk struct {
	*embedded.Backend
	release chan struct{}
	taken   atomic.Int32
}

func (s *slowDisk) CommitStore() bus.Store { return s }

func (s *slowDisk) SaveRunAcking(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, error) {
	s.taken.Add(1)
	saved, err := s.Backend.SaveRunAcking(ctx, r, out, d, journal...)
	<-s.release
	return saved, err
}

func (s *slowDisk) SaveRunAckingAsync(ctx context.Context, r store.Run, out []store.Outbound, d bus.Delivery, journal ...store.Entry) (store.Run, func(context.Context) error, error) {
	s.taken.Add(1)
	saved, durable, err := s.Backend.SaveRunAckingAsync(ctx, r, out, d, journal...)
	if err != nil {
		return saved, nil, err
	}
	return saved, func(ctx context.Context) error {
		err := durable(ctx)
		<-s.release
		return err
	}, nil
}

// A coordinator handles its next reply while the save of the one before
// waits for the disk: with one receiver, the second run's reply is saved
// while the first's save is not yet durable, and both runs complete, in
// the store and to the notifier, once the disk has caught up.
func TestCoordinatorHandlesRepliesWhileSavesWaitForTheDisk(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	disk := &slowDisk{Backend: b, release: make(chan struct{})}
	released := false
	open := func() {
		if !released {
			released = true
			close(disk.release)
		}
	}
	rec := &recorder{}
	svc := probeService(rec)
	rt, err := bus.New(bus.Config{Transport: b, Store: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Register(svc); err != nil {
		t.Fatal(err)
	}
	notes := &notifier{}
	co, err := flow.New(flow.Config{Store: disk, Transport: disk, Flows: []flow.Flow{probeFlow}, Services: []baton.Service{svc},
		Notifier: notes, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := co.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		open()
		stop, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		co.Stop(stop)
		rt.Stop(stop)
		b.Close()
	})

	var ids []string
	for _, key := range []string{"a", "b"} {
		run, _, err := co.StartRun(ctx, flow.StartRequest{Flow: probeFlow.Name, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	for deadline := time.Now().Add(5 * time.Second); disk.taken.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d replies' transitions saved while the first waits for the disk; want 2", disk.taken.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if n := completed(notes); n != 0 {
		t.Fatalf("%d runs told completed before their saves were durable", n)
	}
	open()
	for _, id := range ids {
		for deadline := time.Now().Add(5 * time.Second); ; {
			r, err := co.Run(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == store.RunCompleted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s is %s, want completed", id, r.Status)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); completed(notes) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs told completed, want 2", completed(notes))
		}
		time.Sleep(time.Millisecond)
	}
}

func completed(n *notifier) int {
	c := 0
	for _, x := range n.all() {
		if x.Kind == flow.RunCompleted {
			c++
		}
	}
	return c
}
