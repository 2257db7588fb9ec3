package flow_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// A flow's hosts, read from YAML, bound where its HTTP steps go: a run
// whose input points a step elsewhere fails that step, naming the host.
func TestFlowHostsBoundHTTPSteps(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok": true}`) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	flows, err := flow.Load([]byte(`
name: fetch
version: 1
hosts: [` + u.Host + `]
steps:
  - {name: get, http: {url: "{{input.url}}"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := flows[0].Hosts; len(got) != 1 || got[0] != u.Host {
		t.Fatalf("hosts = %v, want [%s]", got, u.Host)
	}
	h := launch(t, setup{flows: flows})

	ok := h.start("fetch", "allowed", map[string]string{"url": srv.URL + "/x"})
	h.waitStatus(ok.ID, store.RunCompleted)

	away := h.start("fetch", "elsewhere", map[string]string{"url": "http://localhost:" + u.Port() + "/x"})
	r := h.waitStatus(away.ID, store.RunFailed)
	if st := r.Steps["get"]; st.Attempts != 1 || !strings.Contains(st.Error, "the host localhost:"+u.Port()+" is not in the flow's hosts ["+u.Host+"]") {
		t.Errorf("step %+v, want one attempt failed naming the host and the list", st)
	}
}

func TestFlowHostsAreChecked(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "https://api.example.com", "api.example.com/v1", "user@api.example.com", "api.example.com:x"} {
		f := flow.Flow{Name: "f", Version: 1, Hosts: []string{h}, Steps: []flow.Step{{Name: "s", Fail: "no"}}}
		err := f.Validate()
		if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "hosts: "+strconv.Quote(h)) {
			t.Errorf("hosts [%q]: %v, want an Invalid error naming it", h, err)
		}
	}
	for _, h := range []string{"api.example.com", "127.0.0.1:8080", "[::1]:8080", "::1"} {
		f := flow.Flow{Name: "f", Version: 1, Hosts: []string{h}, Steps: []flow.Step{{Name: "s", Fail: "no"}}}
		if err := f.Validate(); err != nil {
			t.Errorf("hosts [%q]: %v", h, err)
		}
	}
}

// A step whose URL writes its host is checked against hosts when the flow
// is loaded; one whose host comes from a value, when it runs.
func TestFlowHostsCheckWrittenHostsAtLoad(t *testing.T) {
	t.Parallel()
	_, err := flow.Load([]byte(`
name: f
version: 1
hosts: [api.example.com]
steps:
  - {name: ok, http: {url: "https://api.example.com:8443/v1/{{input.id}}"}}
  - {name: later, http: {url: "https://{{input.region}}.example.com/"}}
  - {name: bad, http: {url: "https://api.example.org/v1?x={{input.id}}"}}
`))
	if baton.ErrorCode(err) != baton.Invalid || !strings.Contains(err.Error(), "step bad: http: the host api.example.org is not in the flow's hosts [api.example.com]") {
		t.Errorf("load: %v, want an Invalid error naming step bad, its host and the list", err)
	}
}
