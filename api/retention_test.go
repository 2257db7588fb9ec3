package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/store"
)

// A dead letter whose body the store cut shows it in the API (truncated,
// size), and its replay is a 409 that keeps it.
func TestTruncatedDeadLetterOnTheAPI(t *testing.T) {
	t.Parallel()
	b, err := embedded.Open(embedded.Config{Memory: true, Retention: store.Retention{DeadBody: 16}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(b, b))
	t.Cleanup(func() {
		srv.Close()
		b.Close()
	})
	body := `{"id":"ev-1","type":"order.placed.v1","data":{"note":"long enough to be cut"}}`
	if err := b.AddDead(t.Context(), store.DeadLetter{Group: "billing", Type: "order.placed.v1", EventID: "ev-1", Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	dead, err := b.ListDead(t.Context(), "", 1)
	if err != nil || len(dead) != 1 {
		t.Fatalf("list dead: %v, %v", dead, err)
	}
	id := dead[0].ID

	resp, err := http.Get(srv.URL + "/v1/dead-letters/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Body      []byte `json:"body"`
		Truncated bool   `json:"truncated"`
		Size      int    `json:"size"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET dead letter %s: %d, %v", id, resp.StatusCode, err)
	}
	if !got.Truncated || got.Size != len(body) || string(got.Body) != body[:16] {
		t.Errorf("GET dead letter %s: truncated %v, size %d, body %q; want true, %d, %q", id, got.Truncated, got.Size, got.Body, len(body), body[:16])
	}

	resp, err = http.Post(srv.URL+"/v1/dead-letters/"+id+"/replay", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var e api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(e.Error.Message, "16 of") {
		t.Errorf("replay a truncated dead letter: %d %q; want 409 saying what was kept", resp.StatusCode, e.Error.Message)
	}
	if _, err := b.Dead(t.Context(), id); err != nil {
		t.Errorf("the dead letter after a refused replay: %v; want it kept", err)
	}
}
