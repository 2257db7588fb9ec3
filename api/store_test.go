package api_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/backend/embedded"
)

// Replaying a dead letter through an embedded transport with another store
// would forget the inbox mark in that store while the group skips the
// event by the mark in the transport's own: api.New refuses the pair.
func TestNewRefusesForeignStore(t *testing.T) {
	t.Parallel()
	var bs [2]*embedded.Backend
	for i := range bs {
		b, err := embedded.Open(embedded.Config{Memory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs[i] = b
	}
	_, err := api.New(api.Config{Store: bs[1], Transport: bs[0]})
	if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "would split") {
		t.Errorf("New with the embedded transport and another store = %v; want an invalid error saying the inbox and journal would split", err)
	}
	if _, err := api.New(api.Config{Store: bs[0], Transport: bs[0]}); err != nil {
		t.Errorf("New with the embedded transport as its own store = %v; want it accepted", err)
	}
}
