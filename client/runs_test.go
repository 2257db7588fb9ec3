package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/internal/apitest"
	"github.com/batonhq/baton/store"
)

const token = "client-test-token"

// newCoordinated serves the full API, with a token, over a coordinator
// running the order services and flow and a flow that waits for a signal.
func newCoordinated(t *testing.T) (*client.Client, *httptest.Server, *orders.Ledger) {
	t.Helper()
	s := apitest.Start(t, token)
	c := client.New(s.URL, s.Client(), client.WithToken(token))
	t.Cleanup(func() { c.Close() })
	return c, s.Server, s.Ledger
}

func waitStatus(t *testing.T, c *client.Client, id string, want store.RunStatus) store.Run {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == want {
			return r
		}
		if r.Status.Terminal() || time.Now().After(deadline) {
			t.Fatalf("run %s is %s, want %s", id, r.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunsRoundTrip(t *testing.T) {
	t.Parallel()
	c, _, ledger := newCoordinated(t)
	ctx := context.Background()
	o := orders.NewOrder(5)
	in, _ := json.Marshal(o)
	run, created, err := c.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in})
	if err != nil || !created || run.ID == "" || run.Key != o.OrderID {
		t.Fatalf("start: %+v %v %v", run, created, err)
	}
	again, created, err := c.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in})
	if err != nil || created || again.ID != run.ID {
		t.Fatalf("start again: %+v %v %v", again, created, err)
	}
	done := waitStatus(t, c, run.ID, store.RunCompleted)
	if done.Flow != "order" || done.Version != 1 {
		t.Errorf("run %+v", done)
	}
	if n := ledger.Count(o.OrderID, orders.EffectCompleted); n != 1 {
		t.Errorf("completed %d times", n)
	}
	runs, err := c.Runs(ctx, store.RunQuery{Flow: "order", Status: store.RunCompleted, Since: time.Now().Add(-time.Hour), Limit: 10})
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("runs: %+v %v", runs, err)
	}

	w, _, err := c.StartRun(ctx, flow.StartRequest{Flow: "approval", Key: "doc-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignalRun(ctx, w.ID, baton.Event{Type: "approval.granted.v1", Data: json.RawMessage(`{"by":"ana"}`)}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, w.ID, store.RunCompleted)
	_, err = c.SignalRun(ctx, w.ID, baton.Event{Type: "approval.granted.v1"})
	if baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("signal a completed run: %v, want a conflict", err)
	}

	x, _, err := c.StartRun(ctx, flow.StartRequest{Flow: "approval", Key: "doc-2"})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := c.CancelRun(ctx, x.ID, "withdrawn")
	if err != nil || cancelled.Status != store.RunCancelled {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	if _, err := c.CancelRun(ctx, x.ID, ""); baton.ErrorCode(err) != baton.Conflict {
		t.Errorf("cancel twice: %v", err)
	}

	fs, err := c.Flows(ctx)
	if err != nil || len(fs) != 2 || fs[0].Name != "approval" || fs[1].Steps[0].Name != "charge" {
		t.Fatalf("flows: %+v %v", fs, err)
	}

	// Errors keep their codes.
	for name, tc := range map[string]struct {
		err  error
		code baton.Code
	}{
		"unknown run":    {second(c.Run(ctx, "r-nope")), baton.NotFound},
		"unknown flow":   {third(c.StartRun(ctx, flow.StartRequest{Flow: "nope", Key: "k"})), baton.NotFound},
		"no key":         {third(c.StartRun(ctx, flow.StartRequest{Flow: "order"})), baton.Invalid},
		"schema":         {third(c.StartRun(ctx, flow.StartRequest{Flow: "order", Key: "k", Input: json.RawMessage(`{}`)})), baton.Invalid},
		"cancel unknown": {second(c.CancelRun(ctx, "r-nope", "")), baton.NotFound},
	} {
		if baton.ErrorCode(tc.err) != tc.code {
			t.Errorf("%s: %v, want %s", name, tc.err, tc.code)
		}
	}
	if _, err := c.Run(ctx, "r-nope"); !errors.Is(err, baton.ErrNotFound) {
		t.Errorf("unknown run is not baton.ErrNotFound: %v", err)
	}
}

func TestPublishAndSchedulesRoundTrip(t *testing.T) {
	t.Parallel()
	c, _, ledger := newCoordinated(t)
	ctx := context.Background()
	o := orders.NewOrder(9)
	e, _ := baton.NewEvent(orders.TypeOrderPlaced, o.OrderID, o)
	e.CorrelationID = o.OrderID
	id, err := c.Publish(ctx, e)
	if err != nil || id == "" {
		t.Fatalf("publish: %q %v", id, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ledger.Count(o.OrderID, orders.EffectCompleted) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the published order did not complete")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Publish(ctx, baton.Event{Type: "no version"}); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("bad type: %v", err)
	}

	s, err := c.PutSchedule(ctx, store.Schedule{Name: "poll", Flow: "approval", Every: 90 * time.Second, Overlap: store.OverlapBufferOne})
	if err != nil || s.Every != 90*time.Second || s.Overlap != store.OverlapBufferOne || s.Rev != 1 {
		t.Fatalf("put: %+v %v", s, err)
	}
	if _, err := c.PutSchedule(ctx, store.Schedule{Name: "bad", Flow: "approval", Cron: "* * *"}); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("invalid cron: %v", err)
	}
	if s, err = c.PauseSchedule(ctx, "poll"); err != nil || !s.Paused {
		t.Fatalf("pause: %+v %v", s, err)
	}
	list, err := c.Schedules(ctx)
	if err != nil || len(list) != 1 || !list[0].Paused || list[0].Every != 90*time.Second {
		t.Fatalf("list: %+v %v", list, err)
	}
	if s, err = c.ResumeSchedule(ctx, "poll"); err != nil || s.Paused {
		t.Fatalf("resume: %+v %v", s, err)
	}
	if s, err = c.Schedule(ctx, "poll"); err != nil || s.Name != "poll" {
		t.Fatalf("schedule: %+v %v", s, err)
	}
	if err := c.DeleteSchedule(ctx, "poll"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PauseSchedule(ctx, "poll"); !errors.Is(err, baton.ErrNotFound) {
		t.Errorf("pause a deleted schedule: %v", err)
	}
	if err := c.Healthy(ctx); err != nil {
		t.Error(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Error(err)
	}
}

// Without the token, or with a wrong one, every call is unauthorized.
func TestToken(t *testing.T) {
	t.Parallel()
	_, srv, _ := newCoordinated(t)
	ctx := context.Background()
	for _, c := range []*client.Client{client.New(srv.URL, nil), client.New(srv.URL, nil, client.WithToken("wrong"))} {
		if _, err := c.Runs(ctx, store.RunQuery{}); baton.ErrorCode(err) != api.Unauthorized {
			t.Errorf("runs: %v, want unauthorized", err)
		}
		if err := c.Healthy(ctx); err != nil {
			t.Errorf("healthz is open: %v", err)
		}
	}
}

func third[T, U any](_ T, _ U, err error) error { return err }
