// Package ui is Baton's web dashboard: server-rendered pages (html/template)
// over the same store, coordinator and scheduler the API serves, with a
// little vanilla JavaScript for what a page cannot do alone (times in the
// reader's zone, the live tail over server-sent events, confirmations and
// the writes). Templates, CSS and scripts are embedded with embed.FS: the
// binary serves them and nothing is fetched from another host.
//
// New wraps the API handler: /v1/..., /healthz and /readyz go to it, every
// other path is the dashboard's. The dashboard only reads; its writes
// (replay, drop, pause, resume) are same-origin fetch calls to the JSON API,
// which keeps its own cross-origin protection and authentication.
//
// With tokens configured, a user gives a token once on /login; it is kept in
// the HttpOnly, SameSite=Strict session cookie api.SessionCookie (Secure on
// TLS), which the API accepts as it accepts a bearer header. Without tokens
// there is no login.
package ui
