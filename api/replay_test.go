package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/store"
)

// Replaying the step command of a run that has ended is a 409 with the
// conflict code and the refusal's advice, and keeps the dead letter.
func TestReplayOfAnEndedRunsStepIsAConflict(t *testing.T) {
	t.Parallel()
	srv, b := newServer(t)
	ctx := context.Background()
	if _, err := b.Subscribe(ctx, "payment", []string{"order.>"}); err != nil {
		t.Fatal(err)
	}
	run := store.Run{ID: "r-1", Flow: "order", Version: 1, Key: "o-1", Status: store.RunRunning, Created: time.Now()}
	if _, _, err := b.CreateRun(ctx, run, nil); err != nil {
		t.Fatal(err)
	}
	run, _ = b.Run(ctx, "r-1")
	run.Status, run.Error = store.RunFailed, "charge: payment gave up"
	if _, err := b.SaveRun(ctx, run, nil); err != nil {
		t.Fatal(err)
	}
	cmd := baton.Event{ID: "r-1/charge#1", Source: "baton.flow/order", SpecVersion: baton.SpecVersion,
		Type: "order.placed.v1", Subject: "o-1", CorrelationID: "o-1", CausationID: "r-1",
		Data: json.RawMessage(`{}`)}
	body, err := event.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddDead(ctx, store.DeadLetter{Group: "payment", Type: cmd.Type, Body: body,
		Meta:    map[string]string{bus.MetaReplyTo: "coordinator", bus.MetaRun: "r-1"},
		EventID: cmd.ID, CorrelationID: "o-1", Attempts: 4, Reason: "gave up"}); err != nil {
		t.Fatal(err)
	}
	dead, err := b.ListDead(ctx, "", 1)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters %v %v", dead, err)
	}
	resp, err := http.Post(srv.URL+"/v1/dead-letters/"+dead[0].ID+"/replay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusConflict || e.Error.Code != baton.Conflict {
		t.Fatalf("replay of the step of failed run r-1: %s %+v, want 409 conflict", resp.Status, e)
	}
	if !strings.Contains(e.Error.Message, "r-1") || !strings.Contains(e.Error.Message, "baton dlq drop "+dead[0].ID) {
		t.Errorf("refusal %q names neither the run nor baton dlq drop", e.Error.Message)
	}
	if _, err := b.Dead(ctx, dead[0].ID); err != nil {
		t.Errorf("dead letter after the refused replay: %v, want it kept", err)
	}
}
