package moderate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

// Page is a page of the test site.
type Page struct {
	Slug    string // its path is /pages/SLUG
	Title   string
	Text    string
	Private bool // only for logged-in sessions: 401 without one
}

// DefaultPages are the ten pages of the example site: four break the
// default rules, and two hold words that merely contain a banned one.
func DefaultPages() []Page {
	return []Page{
		{Slug: "news-1", Title: "Town fair this weekend", Text: "Bring the family to the town fair: games, music, and the best scampi in the county."},
		{Slug: "news-2", Title: "Road works on Main Street", Text: "Main Street is closed to traffic from Monday to Wednesday while the water mains are replaced."},
		{Slug: "shop-1", Title: "Designer watches, half price", Private: true, Text: "Replica and counterfeit designer watches, shipped overnight in plain boxes."},
		{Slug: "shop-2", Title: "Hand-made oak chairs", Private: true, Text: "Each chair is made to order in our workshop and takes about three weeks."},
		{Slug: "forum-1", Title: "You have won!", Private: true, Text: "Click the link to claim your prize. This is not a SCAM, we promise."},
		{Slug: "forum-2", Title: "Gardening tips", Private: true, Text: "Water tomatoes in the morning, and pinch out the side shoots every week."},
		{Slug: "forum-3", Title: "Investment opportunity", Private: true, Text: "Double your savings in a month: wire us 500 dollars today and we do the rest."},
		{Slug: "blog-1", Title: "A scampi recipe", Text: "Fry the scampi in butter with garlic; scamper to the table while it is hot."},
		{Slug: "blog-2", Title: "Doctors hate this", Private: true, Text: "One miracle cure for every ache: order three bottles now."},
		{Slug: "help-1", Title: "Contact support", Text: "Write to us any time; we answer within one working day."},
	}
}

// sessionCookie is the name of the site's session cookie.
const sessionCookie = "sid"

// Site is the test site. It is safe for concurrent use.
type Site struct {
	pages map[string]Page
	order []string
	delay time.Duration

	mu          sync.Mutex
	owners      map[string]string          // session cookie -> the worker that logged in with it
	logins      map[string]int             // worker -> logins
	usedBy      map[string]map[string]bool // session cookie -> the workers that sent it
	pagesBy     map[string][]string        // session cookie -> the pages served with it
	fetches     map[string]int             // slug -> pages served
	refused     int
	inFlight    int
	maxInFlight int
}

// NewSite returns a site serving pages. Each page takes delay to serve, so
// that the fetches of several workers overlap.
func NewSite(pages []Page, delay time.Duration) *Site {
	s := &Site{
		pages: map[string]Page{}, delay: delay,
		owners: map[string]string{}, logins: map[string]int{},
		usedBy: map[string]map[string]bool{}, pagesBy: map[string][]string{}, fetches: map[string]int{},
	}
	for _, p := range pages {
		s.pages[p.Slug] = p
		s.order = append(s.order, p.Slug)
	}
	return s
}

// Handler returns the site.
func (s *Site) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /pages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"pages": s.order})
	})
	mux.HandleFunc("GET /pages/{slug}", s.page)
	return mux
}

func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Worker string `json:"worker"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&in); err != nil || in.Worker == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"worker": NAME}`})
		return
	}
	b := make([]byte, 12)
	rand.Read(b)
	sid := hex.EncodeToString(b)
	s.mu.Lock()
	s.owners[sid] = in.Worker
	s.logins[in.Worker]++
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, map[string]string{"worker": in.Worker, "status": "logged in"})
}

func (s *Site) page(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pages[r.PathValue("slug")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	worker := r.URL.Query().Get("worker") // who the flow says is asking
	sid := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		sid = c.Value
	}

	s.mu.Lock()
	_, valid := s.owners[sid]
	if p.Private && !valid {
		s.refused++
		s.mu.Unlock()
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	if valid {
		if s.usedBy[sid] == nil {
			s.usedBy[sid] = map[string]bool{}
		}
		s.usedBy[sid][worker] = true
	}
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()

	time.Sleep(s.delay)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html>\n<html><head><title>%s</title></head>\n<body><nav><a href=\"/pages\">All pages</a></nav>\n<article><h1>%[1]s</h1>\n<p>%s</p></article></body></html>\n",
		html.EscapeString(p.Title), html.EscapeString(p.Text))

	s.mu.Lock()
	s.inFlight--
	s.fetches[p.Slug]++
	if valid {
		s.pagesBy[sid] = append(s.pagesBy[sid], p.Slug)
	}
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Session is one session cookie as the site saw it.
type Session struct {
	Owner  string   // the worker that logged in and got it
	UsedBy []string // the workers whose page requests carried it, sorted
	Pages  []string // the pages served to requests carrying it, in order
}

// SiteStats is the site's account of the requests it served.
type SiteStats struct {
	Logins      map[string]int // worker -> logins
	Sessions    []Session      // the session cookies page requests carried, by owner
	Fetches     map[string]int // slug -> times served
	Refused     int            // page requests refused for want of a session
	MaxInFlight int            // the most pages served at once
}

// Stats returns the site's account so far.
func (s *Site) Stats() SiteStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SiteStats{Logins: map[string]int{}, Fetches: map[string]int{}, Refused: s.refused, MaxInFlight: s.maxInFlight}
	for w, n := range s.logins {
		st.Logins[w] = n
	}
	for p, n := range s.fetches {
		st.Fetches[p] = n
	}
	for sid, users := range s.usedBy {
		sess := Session{Owner: s.owners[sid], Pages: slices.Clone(s.pagesBy[sid])}
		for w := range users {
			sess.UsedBy = append(sess.UsedBy, w)
		}
		slices.Sort(sess.UsedBy)
		st.Sessions = append(st.Sessions, sess)
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].Owner < st.Sessions[j].Owner })
	return st
}

// Shared lists the sessions whose cookie was sent by a worker other than
// its owner.
func (st SiteStats) Shared() []Session {
	var out []Session
	for _, s := range st.Sessions {
		if len(s.UsedBy) != 1 || s.UsedBy[0] != s.Owner {
			out = append(out, s)
		}
	}
	return out
}

// server is an HTTP server on a free port of the loopback interface.
type server struct {
	URL string // http://127.0.0.1:PORT
	srv *http.Server
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *server) shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
