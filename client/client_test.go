package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/store"
	"github.com/batonhq/baton/traffic"
)

func newClient(t *testing.T) (*client.Client, *embedded.Backend) {
	t.Helper()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(b, b))
	c := client.New(srv.URL+"/", srv.Client())
	t.Cleanup(func() {
		c.Close()
		srv.Close()
		b.Close()
	})
	return c, b
}

func TestJournalRoundTrip(t *testing.T) {
	t.Parallel()
	c, b := newClient(t)
	ctx := context.Background()
	want := []store.Entry{
		{Time: time.Now().UTC(), CorrelationID: "o/1", Outcome: store.Published, EventID: "a", EventType: "order.placed.v1", Source: "baton"},
		{Time: time.Now().UTC(), CorrelationID: "o/1", Outcome: store.Handled, EventID: "a", EventType: "order.placed.v1",
			Group: "payment", Attempt: 2, Duration: 1500 * time.Microsecond, Caused: []string{"b"}},
		{Time: time.Now().UTC(), CorrelationID: "o-2", Outcome: store.Failed, EventID: "c", Error: "boom"},
	}
	if err := b.Append(ctx, want...); err != nil {
		t.Fatal(err)
	}
	h, err := c.History(ctx, "o/1") // an id that needs escaping
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Group != "payment" || h[1].Duration != want[1].Duration || h[1].Caused[0] != "b" || !h[1].Time.Equal(want[1].Time) {
		t.Fatalf("history %+v", h)
	}
	if h, err := c.History(ctx, "nobody"); err != nil || len(h) != 0 {
		t.Fatalf("unknown history: %+v, %v; want none and no error, as the store", h, err)
	}
	all, err := c.Since(ctx, 0, 2)
	if err != nil || len(all) != 2 {
		t.Fatalf("since 0: %+v %v", all, err)
	}
	rest, err := c.Since(ctx, all[1].Seq, 10)
	if err != nil || len(rest) != 1 || rest[0].Error != "boom" {
		t.Fatalf("since %d: %+v %v", all[1].Seq, rest, err)
	}
	none, err := c.SinceWait(ctx, rest[0].Seq, 10, 50*time.Millisecond)
	if err != nil || len(none) != 0 {
		t.Fatalf("wait with nothing new: %+v %v", none, err)
	}
	if _, err := c.Since(ctx, 0, 0); baton.ErrorCode(err) != baton.Invalid {
		t.Fatalf("limit 0: %v, want an invalid error", err)
	}
}

func TestDeadLetterRoundTrip(t *testing.T) {
	t.Parallel()
	c, b := newClient(t)
	ctx := context.Background()
	if _, err := b.Subscribe(ctx, "payment", []string{"order.*"}); err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"one", "two", "three"} {
		err := b.AddDead(ctx, store.DeadLetter{Group: "payment", Type: "order.placed.v1", Body: []byte{0, 1, 2},
			EventID: "e-" + reason, CorrelationID: "o-1", Attempts: 4, Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ListDead(ctx, "", 2)
	if err != nil || len(list) != 2 || list[0].Reason != "one" || string(list[0].Body) != "\x00\x01\x02" {
		t.Fatalf("list %+v %v", list, err)
	}
	more, err := c.ListDead(ctx, list[1].ID, 10)
	if err != nil || len(more) != 1 || more[0].Reason != "three" {
		t.Fatalf("list after: %+v %v", more, err)
	}
	d, err := c.Dead(ctx, list[1].ID)
	if err != nil || d.EventID != "e-two" || d.Attempts != 4 || d.Group != "payment" {
		t.Fatalf("dead %+v %v", d, err)
	}
	if err := c.ReplayDead(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DropDead(ctx, list[1].ID); err != nil {
		t.Fatal(err)
	}
	left, err := c.ListDead(ctx, "", 10)
	if err != nil || len(left) != 1 || left[0].ID != more[0].ID {
		t.Fatalf("left %+v %v", left, err)
	}

	// Every error comes back with its code.
	for name, err := range map[string]error{
		"dead":   second(c.Dead(ctx, list[0].ID)),
		"replay": c.ReplayDead(ctx, list[0].ID),
		"drop":   c.DropDead(ctx, "12345"),
		"bad id": c.DropDead(ctx, "x"),
	} {
		if !errors.Is(err, baton.ErrNotFound) || baton.ErrorCode(err) != baton.NotFound {
			t.Errorf("%s: %v (%T), want a not_found *baton.Error", name, err, err)
		}
	}
	if _, err := c.ListDead(ctx, "", 5000); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("limit 5000: %v, want invalid", err)
	}
}

func second[T any](_ T, err error) error { return err }

// A body that is not Baton's still gets a code, from the status.
func TestForeignErrorBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, nil).Since(context.Background(), 0, 1)
	if baton.ErrorCode(err) != baton.Unavailable {
		t.Fatalf("%v, want unavailable", err)
	}
}

func TestUnix(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir, err := os.MkdirTemp("", "baton")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "baton.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewHandler(b, b)}
	go srv.Serve(ln)
	defer srv.Close()
	ctx := context.Background()
	if err := b.Append(ctx, store.Entry{Time: time.Now(), CorrelationID: "o-9", Outcome: store.Published, EventID: "x"}); err != nil {
		t.Fatal(err)
	}
	c := client.Unix(sock)
	defer c.Close()
	h, err := c.History(ctx, "o-9")
	if err != nil || len(h) != 1 {
		t.Fatalf("history over the socket: %+v %v", h, err)
	}
	_, err = client.Unix(filepath.Join(dir, "missing.sock")).Since(ctx, 0, 1)
	if baton.ErrorCode(err) != baton.Unavailable {
		t.Fatalf("missing socket: %v, want unavailable", err)
	}
}

// Map returns the map the server draws, as traffic.Build draws it.
func TestMap(t *testing.T) {
	t.Parallel()
	c, b := newClient(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := b.Append(ctx,
		store.Entry{Time: now.Add(-2 * time.Hour), CorrelationID: "o-0", Outcome: store.Published, EventID: "z", EventType: "order.placed.v1", Source: "shop"},
		store.Entry{Time: now.Add(-time.Second), CorrelationID: "o-1", Outcome: store.Published, EventID: "a", EventType: "order.placed.v1", Source: "shop"},
		store.Entry{Time: now, CorrelationID: "o-1", Outcome: store.Handled, EventID: "a", EventType: "order.placed.v1", Group: "payment"},
	); err != nil {
		t.Fatal(err)
	}
	m, err := c.Map(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []traffic.Edge{
		{Kind: traffic.Publishes, From: "shop", To: "order.placed.v1", Count: 1},
		{Kind: traffic.Consumes, From: "order.placed.v1", To: "payment", Count: 1, Timed: 1, HopP50: time.Second, HopP99: time.Second},
	}
	if !reflect.DeepEqual(m.Edges, want) || m.Entries != 2 {
		t.Errorf("map of the last hour: %d entries, %+v; want 2 entries, %+v", m.Entries, m.Edges, want)
	}
	if _, err := c.Map(ctx, -time.Hour); baton.ErrorCode(err) != baton.Invalid {
		t.Errorf("negative window: %v, want invalid", err)
	}
}
