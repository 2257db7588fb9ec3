package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/runner"
)

func openEmbedded(t *testing.T) *backend.Backends {
	t.Helper()
	b, err := backend.Open(context.Background(), backend.Config{Data: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	b := openEmbedded(t)
	svc := greeter(nil)
	for _, tc := range []struct {
		name string
		cfg  runner.Config
		want string
	}{
		{"no backends", runner.Config{Services: []baton.Service{svc}}, "a Transport and a Store are required"},
		{"nothing to run", runner.Config{Transport: b.Transport, Store: b.Store}, "nothing to run"},
		{"beyond loopback without a token", runner.Config{Transport: b.Transport, Store: b.Store,
			Services: []baton.Service{svc}, Addr: "0.0.0.0:0"}, "without a token"},
		{"a service without handlers", runner.Config{Transport: b.Transport, Store: b.Store,
			Services: []baton.Service{{Name: "empty"}}}, "at least one handler"},
		{"flows on a transport that cannot send to one group", runner.Config{Transport: struct{ bus.Transport }{b.Transport},
			Store: b.Store, Services: []baton.Service{svc}, Flows: []flow.Flow{{Name: "welcome", Version: 1,
				Steps: []flow.Step{{Name: "greet", Send: &flow.Send{Type: "user.signed_up.v1"}}}}}}, "cannot send to one consumer group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runner.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || baton.ErrorCode(err) != baton.Invalid {
				t.Fatalf("error %v (%s); want invalid, saying %q", err, baton.ErrorCode(err), tc.want)
			}
		})
	}
}

// Run serves health, readiness, stats and the API on Addr until its
// context ends, then stops: the listener is closed and Stopped is closed.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	b := openEmbedded(t)
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store,
		Services: []baton.Service{greeter(nil)}, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	base := ""
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if a := r.Addr(); a != "" {
			base = "http://" + a
		} else if time.Now().After(deadline) {
			t.Fatal("the runner does not listen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, base+"/readyz", `"ready"`)
	resp, err := http.Post(base+"/v1/events", "application/json",
		strings.NewReader(`{"type":"user.signed_up.v1","subject":"u-9","data":{"name":"Lin"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %s", resp.Status)
	}
	var st runner.Stats
	for deadline := time.Now().Add(10 * time.Second); st.Handled < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v; want the event handled", st)
		}
		st = stats(t, base)
	}
	if st.Published < 2 { // the event posted, and the greeting
		t.Errorf("stats %+v: want 2 published", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case <-r.Stopped():
	default:
		t.Fatal("Run returned before Stopped was closed")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after Run returned")
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func waitFor(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), want) {
				return
			}
			err = errors.New(string(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v; want %s", url, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stats(t *testing.T, base string) runner.Stats {
	t.Helper()
	resp, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st runner.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Start twice is a conflict; Stop before Start is harmless.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	b := openEmbedded(t)
	r, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store, Services: []baton.Service{greeter(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); baton.ErrorCode(err) != baton.Conflict {
		t.Fatalf("second Start: %v; want a conflict", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	unstarted, err := runner.New(runner.Config{Transport: b.Transport, Store: b.Store, Services: []baton.Service{greeter(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstarted.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-unstarted.Stopped()
}
