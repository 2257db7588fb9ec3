package flow_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/flow"
)

// A coordinator on the embedded transport with runs in another store would
// journal how runs end apart from what the services' commits journal:
// flow.New refuses the pair and says why, and accepts the transport as its
// own store, or another store beside a transport that is not a Committer
// (as a broker is).
func TestNewRefusesForeignStore(t *testing.T) {
	t.Parallel()
	open := func() *embedded.Backend {
		b, err := embedded.Open(embedded.Config{Memory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	b, other := open(), open()
	broker := struct{ flow.Transport }{b} // hides Commit
	_, err := flow.New(flow.Config{Transport: b, Store: other})
	if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(fmt.Sprint(err), "would split") || !strings.Contains(fmt.Sprint(err), "give the transport itself as the store") {
		t.Errorf("New with the embedded transport and another store = %v; want an invalid error saying the inbox and journal would split and what to give instead", err)
	}
	if _, err := flow.New(flow.Config{Transport: b, Store: b}); err != nil {
		t.Errorf("New with the embedded transport as its own store = %v; want it accepted", err)
	}
	if _, err := flow.New(flow.Config{Transport: broker, Store: other}); err != nil {
		t.Errorf("New with a transport that is not a Committer and another store = %v; want it accepted", err)
	}
}
