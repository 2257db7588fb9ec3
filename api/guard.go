package api

import (
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/batonhq/baton"
)

// guard keeps browsers from driving the API on a user's behalf, before any
// token is looked at:
//
//   - the Host header must name this server: a loopback name or address,
//     the address the connection came in on, or one of Config.Hosts. A
//     page whose name an attacker re-pointed at 127.0.0.1 (DNS rebinding)
//     sends its own name, and is refused even for reads;
//   - a write from another origin is refused, as net/http's
//     CrossOriginProtection decides it from Sec-Fetch-Site or Origin; a
//     page served by this server (the dashboard) is same-origin and passes;
//   - a request with a body that can change something must say its body is
//     JSON (application/json or application/*+json): an HTML form or a
//     "simple" cross-origin fetch cannot send that type.
//
// Requests on a unix socket skip the Host check: no browser reaches one.
// /healthz and /readyz skip it too, so that probes may name the server as
// they like; they tell nothing but up or not.
func (h *handler) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Method + " " + r.URL.Path
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !h.hostAllowed(r) {
			h.reject(w, r, baton.Errorf(Forbidden, op,
				"the Host header %q does not name this server: use its address, or start the server with --allow-host NAME (api.Config.Hosts) for a name it is reached by", r.Host))
			return
		}
		if err := cop.Check(r); err != nil {
			h.reject(w, r, baton.Errorf(Forbidden, op,
				"a cross-origin request from a browser may not change anything (Origin %q, Sec-Fetch-Site %q): call the API from a program, or from a page this server serves",
				r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")))
			return
		}
		if hasBody(r) && !jsonType(r.Header.Get("Content-Type")) {
			h.reject(w, r, baton.Errorf(UnsupportedMediaType, op,
				"the body must be JSON sent with \"Content-Type: application/json\", not %q (with curl: -H 'Content-Type: application/json' or --json; -d alone sends a form's type)",
				r.Header.Get("Content-Type")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reject answers a refused request and counts it.
func (h *handler) reject(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Warn("api: request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
	writeError(w, err)
}

// hasBody reports whether r is a write that carries a body. A DELETE or a
// POST without one (drop a dead letter, pause a schedule) needs no type.
func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return r.ContentLength != 0 // -1: chunked, of unknown length
}

// jsonType reports whether a Content-Type is JSON: application/json or a
// structured syntax such as application/cloudevents+json, with any
// parameters (charset).
func jsonType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	sub, ok := strings.CutPrefix(mt, "application/")
	return ok && (sub == "json" || strings.HasSuffix(sub, "+json"))
}

// hostAllowed reports whether r's Host names this server.
func (h *handler) hostAllowed(r *http.Request) bool { return HostAllowed(r, h.hosts) }

// HostAllowed reports whether r's Host names this server: a loopback name or
// address, the address the connection came in on, or one of hosts (as
// Config.Hosts). A request on a unix socket always does. Pages served beside
// the API (package ui) check it too, so that a rebound name reads nothing.
func HostAllowed(r *http.Request, hosts []string) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local != nil && local.Network() == "unix" {
		return true
	}
	name := hostName(r.Host)
	if name == "" {
		return false
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	if ip := net.ParseIP(name); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		if tcp, ok := local.(*net.TCPAddr); ok && tcp.IP.Equal(ip) {
			return true
		}
	}
	for _, allowed := range hosts {
		if strings.EqualFold(name, allowed) {
			return true
		}
	}
	return false
}

// hostName is the host of a Host header, without its port or an IPv6
// literal's brackets and zone.
func hostName(host string) string {
	if name, _, err := net.SplitHostPort(host); err == nil {
		host = name
	}
	host = strings.Trim(host, "[]")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	return strings.TrimSuffix(host, ".")
}
