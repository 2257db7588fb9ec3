package api

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// DefaultAddr is where baton server listens by default: loopback only.
const DefaultAddr = "127.0.0.1:7070"

// The timeouts of the servers NewServer builds. Long polls of the journal
// and event streams extend their own write deadlines.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// NewServer returns an *http.Server serving the API configured by cfg on
// addr, with timeouts: 5s to read a request's headers, 30s to read all of
// it, 30s to write the answer (event streams and long polls set their own
// deadlines), 2m for an idle keep-alive connection.
//
// Without tokens (Tokens or ScopedTokens) it only listens on loopback
// (127.0.0.0/8, ::1, localhost): any other addr is an Invalid error saying
// to set a token.
func NewServer(addr string, cfg Config) (*http.Server, error) {
	if len(cfg.Tokens) == 0 && len(cfg.ScopedTokens) == 0 && !Loopback(addr) {
		return nil, baton.Errorf(baton.Invalid, "api server on "+addr,
			"refusing to serve beyond loopback without a token: set --token (or BATON_TOKEN) or --tokens-file (or BATON_TOKENS), or listen on 127.0.0.1")
	}
	h, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}, nil
}

// Loopback reports whether addr (host:port) listens on loopback only. An
// empty host listens everywhere; a host name other than localhost may
// resolve to anything.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
