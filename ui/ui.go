package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/expect"
	"github.com/batonhq/baton/flow"
	"github.com/batonhq/baton/store"
)

//go:embed templates static
var assets embed.FS

// Store is the slice of the state store the pages read: the journal, the
// dead letters and the runs, each paged by the store. Any store.Store will
// do.
type Store interface {
	History(ctx context.Context, correlationID string) ([]store.Entry, error)
	Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error)
	ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error)
	Dead(ctx context.Context, id string) (store.DeadLetter, error)
	ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error)
	Run(ctx context.Context, id string) (store.Run, error)
}

// Scheduler lists the schedules; *flow.Scheduler implements it.
type Scheduler interface {
	List(ctx context.Context) ([]store.Schedule, error)
}

var (
	_ Store     = store.Store(nil)
	_ Scheduler = (*flow.Scheduler)(nil)
)

// Config configures the dashboard. API and Store are required; without a
// Scheduler the schedules page says this process runs none.
type Config struct {
	// API serves /v1/..., /healthz and /readyz: what api.New returns.
	API   http.Handler
	Store Store

	// Flows are the definitions the Flows page draws, and the transaction
	// page draws a run's flow from.
	Flows []flow.Flow
	// Expectations are the ones the Overview counts the broken instances
	// of.
	Expectations []expect.Expectation
	Scheduler    Scheduler

	// Tokens, when any, are the tokens a user may log in with: every token
	// the API accepts, whatever its scope (the API checks the scope of each
	// write the pages send).
	Tokens []string
	// Hosts are the names besides loopback the server is reached by, as
	// api.Config.Hosts: a page asked for under any other Host is refused,
	// as the API refuses it (DNS rebinding).
	Hosts []string
	// Logger receives the errors of pages that failed; the default
	// discards.
	Logger *slog.Logger
}

type dashboard struct {
	store  Store
	flows  []flow.Flow
	expect []expect.Expectation
	sched  Scheduler
	tokens [][sha256.Size]byte
	hosts  []string
	log    *slog.Logger
	pages  map[string]*template.Template
}

// New returns the dashboard, with the API behind it.
func New(cfg Config) (http.Handler, error) {
	if cfg.API == nil || cfg.Store == nil {
		return nil, baton.Errorf(baton.Invalid, "ui.New", "an API handler and a Store are required")
	}
	d := &dashboard{store: cfg.Store, flows: cfg.Flows, expect: cfg.Expectations, sched: cfg.Scheduler, hosts: cfg.Hosts, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range cfg.Tokens {
		if t == "" {
			return nil, baton.Errorf(baton.Invalid, "ui.New", "an empty token would let anyone in")
		}
		d.tokens = append(d.tokens, sha256.Sum256([]byte(t)))
	}
	var err error
	if d.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", cfg.API)
	mux.Handle("/healthz", cfg.API)
	mux.Handle("/readyz", cfg.API)
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheable(http.FileServerFS(static))))
	mux.HandleFunc("GET /login", d.loginPage)
	// A form post: the same cross-origin protection as the API's writes.
	mux.Handle("POST /login", http.NewCrossOriginProtection().Handler(http.HandlerFunc(d.login)))
	mux.Handle("POST /logout", http.NewCrossOriginProtection().Handler(http.HandlerFunc(d.logout)))

	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", d.overview)
	pages.HandleFunc("GET /search", d.search)
	pages.HandleFunc("GET /tx/{id}", d.transaction)
	pages.HandleFunc("GET /runs/{id}", d.run)
	pages.HandleFunc("GET /map", d.trafficMap)
	pages.HandleFunc("GET /dead-letters", d.deadLetters)
	pages.HandleFunc("GET /dead-letters/match", d.deadMatch)
	pages.HandleFunc("GET /dead-letters/{id}", d.deadLetter)
	pages.HandleFunc("GET /schedules", d.schedules)
	pages.HandleFunc("GET /flows", d.flowsPage)
	pages.HandleFunc("GET /tail", d.tail)
	pages.HandleFunc("GET /tail/stream", d.tailStream)
	pages.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, baton.Errorf(baton.NotFound, r.URL.Path, "no such page; the menu above lists them"))
	})
	mux.Handle("/", d.authenticate(pages))
	return d.checkHost(mux), nil
}

// cacheable lets browsers keep the embedded assets for an hour: they
// change only with the binary.
func cacheable(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// checkHost refuses a page or asset asked for under a Host that does not
// name this server, as the API refuses its own paths; the health checks go
// to the API, which lets probes name the server as they like.
func (d *dashboard) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !api.HostAllowed(r, d.hosts) {
			d.fail(w, r, baton.Errorf(api.Forbidden, r.URL.Path,
				"the Host header %q does not name this server: use its address, or start the server with --allow-host NAME", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate sends a browser without a valid session to the login page,
// and back to where it was going after.
func (d *dashboard) authenticate(next http.Handler) http.Handler {
	if len(d.tokens) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(api.SessionCookie); err == nil && d.known(c.Value) {
			next.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

// known compares token with every configured token in constant time, as
// the API does.
func (d *dashboard) known(token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range d.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], d.tokens[i][:])
	}
	return ok == 1
}

type loginData struct {
	Next    string
	Problem string
}

func (d *dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if len(d.tokens) == 0 {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: loginData{Next: localPath(r.URL.Query().Get("next"))}})
}

func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.FormValue("next"))
	token := strings.TrimSpace(r.FormValue("token"))
	if len(d.tokens) == 0 {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !d.known(token) {
		d.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in",
			Data: loginData{Next: next, Problem: "That token is not one this server accepts: use one given to baton server with --token (or BATON_TOKEN)."}})
		return
	}
	http.SetCookie(w, session(r, token, 0))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, session(r, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// session is the cookie that keeps the token: the browser's session only,
// out of the reach of scripts, never sent by another site's requests.
func session(r *http.Request, token string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: api.SessionCookie, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// localPath keeps a redirect on this server: anything but a path is "/".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string // the menu entry to mark as current
	Login bool   // a session to log out of
	Data  any
}

func (d *dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := d.pages[name]
	if !ok {
		d.log.Error("ui: no template", "name", name)
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	p.Login = len(d.tokens) > 0
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil && r.Context().Err() == nil {
		d.log.Error("ui: render", "page", name, "err", err)
	}
}

// fail renders the error page, with the status the API would answer.
func (d *dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := api.Status(baton.ErrorCode(err))
	if status >= 500 && r.Context().Err() == nil {
		d.log.Error("ui: page failed", "path", r.URL.Path, "err", err)
	}
	msg := err.Error()
	if status >= 500 {
		// The detail is in the log; a page does not show internal errors.
		msg = "the server could not show this page; its log says why"
	}
	d.render(w, r, status, "error", page{Title: http.StatusText(status), Data: msg})
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	},
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"dur": func(d time.Duration) string {
		switch {
		case d == 0:
			return "—"
		case d < time.Millisecond:
			return d.Round(time.Microsecond).String()
		case d < time.Second:
			return d.Round(100 * time.Microsecond).String()
		}
		return d.Round(time.Millisecond).String()
	},
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
}
