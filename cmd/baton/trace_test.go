package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/examples/orders"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

// exported is a span as an OTLP receiver got it.
type exported struct {
	service, name     string
	trace, id, parent string
	attrs             map[string]string
}

// otlpReceiver is an OTLP/HTTP collector of traces: it keeps every span
// exported to it at /v1/traces.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []exported
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
			http.NotFound(w, req)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &msg); err != nil {
			t.Errorf("OTLP receiver: a request that is no ExportTraceServiceRequest: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) add(msg *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range msg.ResourceSpans {
		service := attrMap(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, exported{service: service, name: s.Name,
					trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
					parent: hex.EncodeToString(s.ParentSpanId), attrs: attrMap(s.Attributes)})
			}
		}
	}
}

func (r *otlpReceiver) all() []exported {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exported(nil), r.spans...)
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.Key] = strconv.FormatBool(v.BoolValue)
		}
	}
	return m
}

func (s exported) String() string {
	return fmt.Sprintf("%s [%s] %s<-%s group=%q attempt=%s outcome=%q", s.name, s.service, s.id, s.parent,
		s.attrs["messaging.consumer.group.name"], s.attrs["baton.attempt"], s.attrs["baton.outcome"])
}

// Orders placed through RabbitMQ, with the coordinator and each service in
// a process of its own exporting spans over OTLP, in both styles: each
// order is one trace, a tree with one root, holding a process span for
// everything the journal says a group did with its events (the retried
// attempts and the dead letter included), from the process of that group,
// and a send span for every event published; baton status prints the
// trace's id.
func TestMultiProcessTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes; skipped with -short")
	}
	ns := testNamespace()
	backends := enginePairs[0].setUp(t, ns) // RabbitMQ and PostgreSQL
	recv := newOTLPReceiver(t)
	otelEnv := func(service string) []string {
		return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=100",
			"OTEL_SERVICE_NAME=" + service, "OTEL_TRACES_SAMPLER=always_on"}
	}
	const rate = 0.5
	dir := t.TempDir()
	server := startProcEnv(t, "server", serverReady, otelEnv("baton-server"), append([]string{"server", "--demo",
		"--services=false", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "server")}, backends...)...)
	var workers []*proc
	for _, s := range orderServiceNames() {
		workers = append(workers, startProcEnv(t, s+" worker", "baton worker: services "+s, otelEnv("baton-worker-"+s),
			append([]string{"worker", "--service", s, "--data", filepath.Join(dir, s), "--fail-rate", fmt.Sprint(rate)}, backends...)...))
	}
	cl := client.New(server.url(), nil)
	defer cl.Close()
	ctx := t.Context()

	// In each style: an order that goes well, one whose payment gateway
	// fails twice (retried attempts), one whose gateway is down (a dead
	// letter).
	faults := orders.Faults{Rate: rate}
	style := map[string]string{}
	next := 0
	for _, st := range []string{styleChoreography, styleOrchestration} {
		for _, k := range []orders.Fault{orders.NoFault, orders.GatewayFlaky, orders.GatewayDown} {
			for faults.For(orders.NewOrder(next).OrderID) != k {
				next++
			}
			o := orders.NewOrder(next)
			next++
			style[o.OrderID] = st
			if st == styleOrchestration {
				in, _ := json.Marshal(o)
				if _, _, err := cl.StartRun(ctx, flow.StartRequest{Flow: "order", Key: o.OrderID, Input: in}); err != nil {
					t.Fatalf("start %s: %v", o.OrderID, err)
				}
				continue
			}
			e, err := o.Event()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Publish(ctx, e); err != nil {
				t.Fatalf("publish %s: %v", o.OrderID, err)
			}
		}
	}

	histories := map[string][]store.Entry{}
	waitUntil(t, 3*time.Minute, "every order ends", func() (bool, string) {
		var open []string
		for id := range style {
			h, err := cl.History(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			histories[id] = h
			if v := verdict(h); len(h) == 0 || strings.HasPrefix(v, "in progress") {
				open = append(open, id+": "+v)
			}
		}
		return len(open) == 0, fmt.Sprintf("not ended: %q", open)
	})
	traceOf := map[string]string{}
	for id, h := range histories {
		ids := traceIDs(h)
		if len(ids) != 1 {
			t.Fatalf("order %s (%s): the journal names traces %q, want one", id, style[id], ids)
		}
		traceOf[id] = ids[0]
		var out, errOut bytes.Buffer
		if code := run(ctx, &env{stdout: &out, stderr: &errOut}, []string{"status", "--server", server.url(), id}); code != exitOK {
			t.Fatalf("baton status %s: exit %d: %s", id, code, errOut.String())
		}
		if !strings.Contains(out.String(), "\ntrace: "+ids[0]+"\n") {
			t.Errorf("baton status %s does not print its trace %s:\n%s", id, ids[0], out.String())
		}
	}
	// Stopped gracefully, each process sends the spans it holds.
	server.stop(t)
	for _, w := range workers {
		w.stop(t)
	}

	spans := recv.all()
	byTrace := map[string][]exported{}
	for _, s := range spans {
		byTrace[s.trace] = append(byTrace[s.trace], s)
		if id := s.attrs["baton.correlation_id"]; id != "" && traceOf[id] != "" && s.trace != traceOf[id] {
			t.Errorf("order %s: span %v is in trace %s, not the order's %s", id, s, s.trace, traceOf[id])
		}
	}
	for id, h := range histories {
		tr := byTrace[traceOf[id]]
		what := fmt.Sprintf("order %s (%s, %s)", id, style[id], faults.For(id))
		checkTree(t, what, tr)
		for _, e := range h {
			switch {
			case e.Group != "":
				outcome := map[store.Outcome]string{store.Handled: "ok", store.Failed: "retried",
					store.DeadLettered: "dead-lettered", store.Duplicate: "duplicate"}[e.Outcome]
				if !hasSpan(tr, func(s exported) bool {
					return s.name == "process "+e.EventType && s.attrs["messaging.consumer.group.name"] == e.Group &&
						s.attrs["baton.attempt"] == strconv.Itoa(e.Attempt) && s.attrs["baton.outcome"] == outcome &&
						s.attrs["messaging.system"] == "rabbitmq" && s.service == "baton-worker-"+e.Group
				}) {
					t.Errorf("%s: no span of %s processing %s (attempt %d, %s) in its trace:\n%s", what, e.Group, e.EventType, e.Attempt, outcome, listSpans(tr))
				}
			case e.Outcome == store.Published:
				if !hasSpan(tr, func(s exported) bool { return s.name == "send "+e.EventType }) {
					t.Errorf("%s: no span sending %s in its trace:\n%s", what, e.EventType, listSpans(tr))
				}
			}
		}
		t.Logf("%s: trace %s, %d spans, %d journal entries", what, traceOf[id], len(tr), len(h))
		switch faults.For(id) {
		case orders.GatewayFlaky:
			if !hasSpan(tr, func(s exported) bool { return s.attrs["baton.outcome"] == "retried" }) {
				t.Errorf("%s: no retried attempt in its trace:\n%s", what, listSpans(tr))
			}
		case orders.GatewayDown:
			if !hasSpan(tr, func(s exported) bool { return s.attrs["baton.outcome"] == "dead-lettered" }) {
				t.Errorf("%s: no dead letter in its trace:\n%s", what, listSpans(tr))
			}
		}
		if style[id] == styleOrchestration {
			for _, name := range []string{"run order", "step charge"} {
				if !hasSpan(tr, func(s exported) bool { return s.name == name && s.service == "baton-server" }) {
					t.Errorf("%s: no span %q of the coordinator in its trace:\n%s", what, name, listSpans(tr))
				}
			}
		}
	}
}

// checkTree fails t unless spans make one tree: one root, and every other
// span's parent among them.
func checkTree(t *testing.T, what string, spans []exported) {
	t.Helper()
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.id] = true
	}
	var roots []exported
	for _, s := range spans {
		switch {
		case s.parent == "" || s.parent == "0000000000000000":
			roots = append(roots, s)
		case !ids[s.parent]:
			t.Errorf("%s: span %v has a parent that is not in the trace", what, s)
		}
	}
	if len(roots) != 1 {
		t.Errorf("%s: %d root spans, want 1: %v", what, len(roots), roots)
	}
}

func hasSpan(spans []exported, match func(exported) bool) bool {
	for _, s := range spans {
		if match(s) {
			return true
		}
	}
	return false
}

func listSpans(spans []exported) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %v\n", s)
	}
	return b.String()
}
