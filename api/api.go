// Package api is Baton's HTTP/JSON API: starting, watching, cancelling and
// signalling the coordinator's runs; the flows it runs; publishing events
// for choreography; schedules; the journal (what happened to each business
// transaction, and a live feed of it); the choreography map drawn from it
// (GET /v1/map); the dead-letter queues, with replay;
// a server-sent-events stream of notifications; health and readiness.
//
// Every path is versioned under /v1, except /healthz and /readyz. Errors
// are JSON objects,
//
//	{"error": {"code": "not_found", "message": "dead letter 42: no such dead letter"}}
//
// whose HTTP status is derived from the code in one function, Status. The
// client package maps them back to *baton.Error with the same code.
//
// With tokens configured, every path but /healthz and /readyz requires
// "Authorization: Bearer <token>", of a scope (read, write, admin) that
// covers the endpoint; NewServer refuses to listen anywhere but on
// loopback without tokens. Before any token is looked at, requests whose
// Host does not name the server, writes from other origins' pages and
// bodies that are not JSON are refused (guard.go). A 5xx answer carries an
// error id, and the server's log the detail. docs/security.md says more.
package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/event"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/notify"
	"github.com/batonhq/baton/store"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Codes of the API's own errors, beside baton's: each has its HTTP status
// in Status. The client returns them as *baton.Error with these codes.
const (
	Unauthorized     baton.Code = "unauthorized"       // 401: no token, or not one of the configured tokens
	TooLarge         baton.Code = "too_large"          // 413: the request body is over the limit
	MethodNotAllowed baton.Code = "method_not_allowed" // 405: the path exists, the method does not
	// 403: the token's scope is not enough, or a browser's request was
	// refused (a Host that does not name the server, a cross-origin write).
	Forbidden            baton.Code = "forbidden"
	UnsupportedMediaType baton.Code = "unsupported_media_type" // 415: a body that is not JSON
	TooManyRequests      baton.Code = "too_many_requests"      // 429: over a limit of open streams
)

// DefaultMaxBody is the default limit of a request body: 1 MiB.
const DefaultMaxBody = 1 << 20

// Coordinator is what the runs and flows endpoints need of the coordinator;
// *flow.Coordinator implements it.
type Coordinator interface {
	// StartRun validates and starts a run; starting a key the flow
	// already has returns that run, created false.
	StartRun(ctx context.Context, req flow.StartRequest) (run store.Run, created bool, err error)
	Run(ctx context.Context, id string) (store.Run, error)
	Runs(ctx context.Context, q store.RunQuery) ([]store.Run, error)
	Cancel(ctx context.Context, id, reason string) (store.Run, error)
	Signal(ctx context.Context, id string, e baton.Event) (store.Run, error)
	Flows() []flow.Flow
}

// Scheduler is what the schedules endpoints need; *flow.Scheduler
// implements it.
type Scheduler interface {
	Put(ctx context.Context, s store.Schedule) (store.Schedule, error)
	Pause(ctx context.Context, name string) (store.Schedule, error)
	Resume(ctx context.Context, name string) (store.Schedule, error)
	List(ctx context.Context) ([]store.Schedule, error)
	Delete(ctx context.Context, name string) error
}

// Publisher publishes events for choreography; *bus.Runtime implements it.
type Publisher interface {
	Publish(ctx context.Context, events ...baton.Event) error
}

var (
	_ Coordinator = (*flow.Coordinator)(nil)
	_ Scheduler   = (*flow.Scheduler)(nil)
	_ Publisher   = (*bus.Runtime)(nil)
)

// Store is the slice of the state store the API serves from: the journal
// (history, the live feed, the map, and readiness, which reads it), the
// dead letters, and what replaying one needs (bus.ReplayStore). A
// store.Store will do.
type Store interface {
	bus.ReplayStore
	History(ctx context.Context, correlationID string) ([]store.Entry, error)
	Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error)
	ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error)
}

// Config configures the API. Only Store and Transport are required; the
// endpoints of a part that is not given answer 404 with a message saying
// that this process does not run it.
type Config struct {
	Store     Store         // required: the journal, dead letters, readiness
	Transport bus.Transport // required: dead letters are replayed on it

	Coordinator Coordinator // /v1/runs, /v1/flows
	Scheduler   Scheduler   // /v1/schedules
	Publisher   Publisher   // POST /v1/events
	// Hub serves GET /v1/stream, and hears of the starts the API itself
	// refuses (no key, a malformed body): the coordinator tells its
	// notifier of those it refuses.
	Hub *notify.Hub

	// Tokens, when any or when ScopedTokens are, are the bearer tokens
	// that may use the API, with the admin scope: they may do everything.
	// Each is at least MinTokenLength bytes.
	Tokens []string
	// ScopedTokens are more tokens, each with its scope (read, write or
	// admin; docs/security.md). ParseTokens reads them.
	ScopedTokens []Token
	// Hosts are the names, beside loopback names and addresses and the
	// address a request came in on, that the Host header may give: the
	// names a server listening beyond loopback is reached by
	// ("baton.example.com"). A request naming another host is refused
	// (DNS rebinding).
	Hosts []string
	// MaxStreams bounds the event streams (GET /v1/stream) and long polls
	// (GET /v1/journal?wait=) open at once on this server (default
	// DefaultMaxStreams); MaxStreamsPerToken bounds those of one token
	// (default DefaultMaxStreamsPerToken). One over either is refused
	// with 429.
	MaxStreams         int
	MaxStreamsPerToken int
	// Ready reports whether the process is ready to serve (for instance:
	// its coordinator has started); /readyz also checks that the store
	// answers. Nil means ready once the store answers.
	Ready func(ctx context.Context) error
	// MaxBody limits request bodies (default DefaultMaxBody).
	MaxBody int64
	// TracerProvider, when set, makes each request a server span
	// (otelhttp), the child of the caller's W3C trace context when its
	// headers carry one, and the parent of what the request publishes or
	// starts: a trace starts at the API. Nil makes none; what a request
	// publishes or starts then still joins the caller's context.
	TracerProvider trace.TracerProvider
	// Logger receives internal errors, and a line per request at Info
	// (method, path, status, bytes, duration, client address; never a
	// header or the query); the default discards.
	Logger *slog.Logger
}

type handler struct {
	store     Store
	transport bus.Transport
	coord     Coordinator
	sched     Scheduler
	pub       Publisher
	hub       *notify.Hub
	ready     func(context.Context) error
	maxBody   int64
	log       *slog.Logger
	tokens    []tokenDigest
	hosts     []string
	streams   *streamLimit
	journalW  *journalWatch
	tracer    trace.TracerProvider
}

// New returns the API as configured.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Transport == nil {
		return nil, baton.Errorf(baton.Invalid, "api.New", "a Store and a Transport are required")
	}
	if err := bus.CheckStore(cfg.Transport, cfg.Store); err != nil {
		// A replay would forget the inbox mark in one store while the
		// group skips the event by the mark in the other.
		return nil, baton.Errorf(baton.Invalid, "api.New", "%w", err)
	}
	if cfg.MaxBody < 0 || cfg.MaxStreams < 0 || cfg.MaxStreamsPerToken < 0 {
		return nil, baton.Errorf(baton.Invalid, "api.New", "MaxBody, MaxStreams and MaxStreamsPerToken may not be negative")
	}
	h := &handler{
		store: cfg.Store, transport: cfg.Transport, coord: cfg.Coordinator, sched: cfg.Scheduler,
		pub: cfg.Publisher, hub: cfg.Hub, ready: cfg.Ready, maxBody: cfg.MaxBody, log: cfg.Logger,
		tracer: cfg.TracerProvider,
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	tokens := make([]Token, 0, len(cfg.Tokens)+len(cfg.ScopedTokens))
	for _, t := range cfg.Tokens {
		tokens = append(tokens, Token{Secret: t, Scope: ScopeAdmin})
	}
	for _, t := range append(tokens, cfg.ScopedTokens...) {
		if err := t.check(); err != nil {
			return nil, baton.Errorf(baton.Invalid, "api.New", "%w", err)
		}
		h.tokens = append(h.tokens, tokenDigest{sum: sha256.Sum256([]byte(t.Secret)), scope: t.Scope})
	}
	for _, given := range cfg.Hosts {
		name := hostName(given)
		if name == "" || strings.ContainsAny(given, "/@ \t") {
			return nil, baton.Errorf(baton.Invalid, "api.New", "host %q: give a host name such as baton.example.com, not a URL", given)
		}
		h.hosts = append(h.hosts, name)
	}
	h.streams = newStreamLimit(cmp.Or(cfg.MaxStreams, DefaultMaxStreams), cmp.Or(cfg.MaxStreamsPerToken, DefaultMaxStreamsPerToken))
	h.journalW = &journalWatch{store: cfg.Store, waiters: map[*journalWaiter]struct{}{}}
	return h.routes(), nil
}

// NewHandler returns the journal and dead-letter API over a store and the
// transport dead letters are replayed on (they may be the same value, as
// with the embedded backend), without tokens: New with only those two.
func NewHandler(s Store, t bus.Transport) http.Handler {
	h, err := New(Config{Store: s, Transport: t})
	if err != nil {
		// Only nil arguments fail; answer every request with why.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeError(w, err) })
	}
	return h
}

func (h *handler) routes() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	handle := func(method, path string, need Scope, fn http.HandlerFunc) {
		if need != 0 {
			fn = h.allow(need, fn)
		}
		mux.HandleFunc(method+" "+path, fn)
		allowed[path] = append(allowed[path], method)
	}
	handle("GET", "/healthz", 0, h.healthz)
	handle("GET", "/readyz", 0, h.readyz)

	handle("POST", "/v1/runs", ScopeWrite, h.needCoord(h.startRun))
	handle("GET", "/v1/runs", ScopeRead, h.needCoord(h.listRuns))
	handle("GET", "/v1/runs/{id}", ScopeRead, h.needCoord(h.getRun))
	handle("POST", "/v1/runs/{id}/cancel", ScopeWrite, h.needCoord(h.cancelRun))
	handle("POST", "/v1/runs/{id}/events", ScopeWrite, h.needCoord(h.signalRun))
	handle("GET", "/v1/flows", ScopeRead, h.needCoord(h.flows))

	handle("POST", "/v1/events", ScopeWrite, h.publish)
	handle("GET", "/v1/stream", ScopeRead, h.stream)

	handle("GET", "/v1/schedules", ScopeRead, h.needSched(h.listSchedules))
	handle("POST", "/v1/schedules", ScopeAdmin, h.needSched(h.putSchedule))
	handle("GET", "/v1/schedules/{name}", ScopeRead, h.needSched(h.getSchedule))
	handle("DELETE", "/v1/schedules/{name}", ScopeAdmin, h.needSched(h.deleteSchedule))
	handle("POST", "/v1/schedules/{name}/pause", ScopeAdmin, h.needSched(h.pauseSchedule))
	handle("POST", "/v1/schedules/{name}/resume", ScopeAdmin, h.needSched(h.resumeSchedule))

	handle("GET", "/v1/journal", ScopeRead, h.journal)
	handle("GET", "/v1/history/{correlationID}", ScopeRead, h.history)
	handle("GET", "/v1/map", ScopeRead, h.trafficMap)
	handle("GET", "/v1/dead-letters", ScopeRead, h.listDead)
	handle("GET", "/v1/dead-letters/{id}", ScopeRead, h.dead)
	handle("POST", "/v1/dead-letters/{id}/replay", ScopeAdmin, h.replayDead)
	handle("DELETE", "/v1/dead-letters/{id}", ScopeAdmin, h.dropDead)

	for path, methods := range allowed {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		slices.Sort(methods)
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, baton.Errorf(MethodNotAllowed, r.Method+" "+r.URL.Path, "method not allowed here; use %s", allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, baton.Errorf(baton.NotFound, r.Method+" "+r.URL.Path, "no such endpoint (see docs/api.md)"))
	})
	next := h.logRequests(h.guard(h.authenticate(mux)))
	if h.tracer == nil {
		return next
	}
	// Outermost, so that the access log's line carries the span's ids.
	return otelhttp.NewHandler(next, "baton api", otelhttp.WithTracerProvider(h.tracer),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }))
}

func (h *handler) needCoord(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.coord == nil {
			writeError(w, baton.Errorf(baton.NotFound, r.Method+" "+r.URL.Path, "this process runs no coordinator (baton server does)"))
			return
		}
		fn(w, r)
	}
}

func (h *handler) needSched(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.sched == nil {
			writeError(w, baton.Errorf(baton.NotFound, r.Method+" "+r.URL.Path, "this process runs no scheduler (baton server does)"))
			return
		}
		fn(w, r)
	}
}

// Status maps an error code to its HTTP status. It is the only place that
// does.
func Status(code baton.Code) int {
	switch code {
	case baton.Invalid:
		return http.StatusBadRequest
	case baton.NotFound:
		return http.StatusNotFound
	case baton.Conflict:
		return http.StatusConflict
	case baton.Unavailable:
		return http.StatusServiceUnavailable
	case Unauthorized:
		return http.StatusUnauthorized
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Forbidden:
		return http.StatusForbidden
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case TooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong, with a baton.Code. A 5xx answer says
// only what kind of failure it was, and ErrorID: the server logs the detail
// under that id.
type ErrorDetail struct {
	Code    baton.Code `json:"code"`
	Message string     `json:"message"`
	ErrorID string     `json:"error_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err, which is the client's fault (4xx): its message
// says what to change. The server's own failures go through fail.
func writeError(w http.ResponseWriter, err error) {
	code := baton.ErrorCode(err)
	writeJSON(w, Status(code), ErrorBody{Error: ErrorDetail{Code: code, Message: err.Error()}})
}

// fail answers err. A failure of the server (5xx) is logged with a new
// error id, and answered with that id and a generic message: its text may
// name hosts, files or queries the caller has no business seeing.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := baton.ErrorCode(err)
	if errors.Is(err, context.Canceled) && code == baton.Internal {
		code = baton.Unavailable
	}
	if Status(code) < 500 {
		writeError(w, err)
		return
	}
	id := event.NewID()
	level := slog.LevelError
	if r.Context().Err() != nil {
		level = slog.LevelDebug // the client went away; nobody reads the answer
	}
	h.log.Log(r.Context(), level, "api: request failed", "method", r.Method, "path", r.URL.Path, "error_id", id, "err", err)
	msg := "internal error"
	if code == baton.Unavailable {
		msg = "unavailable: a backend does not answer, or the server is starting or stopping; try again later"
	}
	writeJSON(w, Status(code), ErrorBody{Error: ErrorDetail{Code: code, ErrorID: id,
		Message: fmt.Sprintf("%s (the server's log has the detail under error_id %s)", msg, id)}})
}

// decode reads the request body, at most maxBody bytes of one JSON value
// with no field v does not have, into v. An empty body is an error unless
// optional.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	op := r.Method + " " + r.URL.Path
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One value only: anything after it but blanks is an error.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("more than one JSON value in the body")
		}
	}
	return bodyError(op, err, optional, h.maxBody)
}

// bodyError says what is wrong with a request body, in the user's terms.
func bodyError(op string, err error, optional bool, limit int64) error {
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return baton.Errorf(TooLarge, op, "the request body is larger than the limit of %s", size(limit))
	case errors.Is(err, io.EOF):
		if optional {
			return nil
		}
		return baton.Errorf(baton.Invalid, op, "malformed JSON: the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return baton.Errorf(baton.Invalid, op, "malformed JSON: the body ends in the middle of a value")
	case errors.As(err, &syntax):
		return baton.Errorf(baton.Invalid, op, "malformed JSON: %v (at byte %d)", syntax, syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return baton.Errorf(baton.Invalid, op, "malformed JSON: want an object, got %s", typeErr.Value)
		}
		return baton.Errorf(baton.Invalid, op, "field %q: want %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return baton.Errorf(baton.Invalid, op, "unknown field %s", name)
	}
	var be *baton.Error
	if errors.As(err, &be) {
		return err
	}
	return baton.Errorf(baton.Invalid, op, "malformed JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return goKind
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
