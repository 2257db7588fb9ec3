package flow

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/event"
)

// Flow is a versioned process definition: steps run in sequence. A run pins
// the version it started on.
type Flow struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// InputSchema is a JSON Schema the input of a run must satisfy.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	// Hosts, when set, are the only hosts the flow's HTTP steps may call:
	// "api.example.com" (any port) or "127.0.0.1:8080" (that port). A call
	// to another host fails the step, naming the host and the list; a step
	// whose URL writes its host is checked by Validate.
	Hosts []string `json:"hosts,omitempty"`
	Steps []Step   `json:"steps"`
	// OnFailure runs after a failed run's compensations, for instance to
	// tell the customer. Its own failure is recorded but changes nothing.
	OnFailure []Step `json:"on_failure,omitempty"`
}

// Step is one thing a flow does. Exactly one of Send, HTTP, Parallel,
// Choice, Sleep, Until, Wait, Notify and Fail is set.
type Step struct {
	Name string `json:"name"`

	Send     *Send     `json:"send,omitempty"`
	HTTP     *HTTPCall `json:"http,omitempty"`
	Parallel *Parallel `json:"parallel,omitempty"`
	Choice   []Branch  `json:"choice,omitempty"`
	Sleep    Duration  `json:"sleep,omitempty"`
	// Until sleeps until a time: an RFC 3339 time, or a {{path}} template
	// giving one ("{{input.deliver_at}}"). A time past is no wait.
	Until  string  `json:"until,omitempty"`
	Wait   *Wait   `json:"wait,omitempty"`
	Notify *Notify `json:"notify,omitempty"`
	Fail   string  `json:"fail,omitempty"` // fail the run with this message

	// Timeout fails an attempt that has not finished in time (Send, HTTP
	// and Wait steps). Default 30s for Send and HTTP; a Wait without one
	// waits forever.
	Timeout Duration `json:"timeout,omitempty"`
	// Retry retries a failed attempt (a timeout, a service that gave up, an
	// HTTP error) with backoff and full jitter. Default for Send steps: one
	// attempt, since services retry their handlers themselves; for HTTP
	// steps: DefaultHTTPRetry (5xx, 429, timeouts and network errors are
	// retried; other 4xx are not). A reply listed in Send.FailOn is a
	// business outcome and is never retried.
	Retry *baton.RetryPolicy `json:"retry,omitempty"`
	// Compensate runs, in reverse order over the completed steps, when the
	// run fails after this step completed.
	Compensate *Step `json:"compensate,omitempty"`
}

// Send sends an event to the service that handles its type and waits for
// that service's outputs: the first reply becomes the step's result.
type Send struct {
	// Type is the event type to send, or "$last" for the type of the last
	// event the run received (to hand a failure on, as compensations do).
	Type string `json:"type"`
	// Data is the path of the run data sent as the event's data: "input"
	// (the default), "steps.NAME" (a step's result), "last" (the last event
	// received), or a path into one of them ("steps.charge.payment_id").
	Data string `json:"data,omitempty"`
	// FailOn lists reply types that fail the step: a declined payment.
	FailOn []string `json:"fail_on,omitempty"`
}

// HTTPCall calls an outside API. URL, headers, Session and Body may hold
// {{path}} templates filled from the run data; values in the URL are
// escaped for their part of it (see RenderURL). The flow's Hosts bound
// where it may go.
type HTTPCall struct {
	Method string `json:"method,omitempty"` // default GET
	URL    string `json:"url"`
	// Session names a cookie jar: the calls of one run with the same
	// session share cookies and Headers; different sessions do not.
	Session string            `json:"session,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// Map copies parts of the response into the run's variables: variable
	// name -> path into {"status": ..., "headers": {...}, "body": ...}, the
	// body parsed when it is JSON ("body.temperature").
	Map map[string]string `json:"map,omitempty"`
}

// Parallel runs branches at once and joins them.
type Parallel struct {
	Branches [][]Step `json:"branches"`
	// Join is "all" (default: every branch must complete; one failing fails
	// the step) or "first" (the first branch to complete wins; the others
	// are skipped).
	Join string `json:"join,omitempty"`
}

// Branch is one arm of a Choice: the first whose condition holds runs; a
// branch without a condition is the default.
type Branch struct {
	When  *Condition `json:"when,omitempty"`
	Steps []Step     `json:"steps"`
}

// Condition compares the value at Path in the run data with Value.
type Condition struct {
	Path string `json:"path"`
	// Op is one of eq, ne, gt, gte, lt, lte (numbers), in (Value is a
	// list), exists.
	Op    string `json:"op"`
	Value any    `json:"value,omitempty"`
}

// Wait waits for an external event of Type that names the run: sent to it
// through the API, or published with the run's business key as its
// correlation id.
type Wait struct {
	Type string `json:"type"`
}

// Notify sends a message to the coordinator's notifier (an alert).
type Notify struct {
	Message string `json:"message"` // may hold {{path}} templates
}

// DefaultHTTPRetry is the retry policy of HTTP steps that set none.
var DefaultHTTPRetry = baton.RetryPolicy{MaxAttempts: 3, Base: 200 * time.Millisecond, Cap: 5 * time.Second}

// Duration is a time.Duration written as "1.5s" in JSON and YAML.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if json.Unmarshal(b, &n) != nil {
			return fmt.Errorf("duration %s: want a string such as \"1.5s\"", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// ReservedPrefix begins the flow names of the runs that another part keeps
// in the store's run index: an expectation's watcher (package expect) keeps
// each instance it watches as a run of "expect:NAME". The coordinator leaves
// these runs alone, run listings leave them out, and no flow may be named
// so.
const ReservedPrefix = "expect:"

// Reserved reports whether a flow name is reserved (ReservedPrefix).
func Reserved(name string) bool { return strings.HasPrefix(name, ReservedPrefix) }

// Validate checks the definition and says what is wrong with it.
func (f *Flow) Validate() error {
	if f.Name == "" || strings.ContainsAny(f.Name, " /") {
		return invalidf("flow name %q: want a non-empty name without spaces or slashes", f.Name)
	}
	if Reserved(f.Name) {
		return invalidf("flow name %q: names beginning %q are reserved for the runs of expectations", f.Name, ReservedPrefix)
	}
	if f.Version < 1 {
		return invalidf("flow %s: version %d: versions start at 1", f.Name, f.Version)
	}
	if len(f.Steps) == 0 {
		return invalidf("flow %s v%d has no steps", f.Name, f.Version)
	}
	for _, h := range f.Hosts {
		if err := validHost(h); err != nil {
			return invalidf("flow %s v%d: hosts: %q: %v", f.Name, f.Version, h, err)
		}
	}
	names := map[string]bool{}
	if err := validateSteps(f.Steps, "", f.Hosts, names); err != nil {
		return fmt.Errorf("flow %s v%d: %w", f.Name, f.Version, err)
	}
	if err := validateSteps(f.OnFailure, "on_failure/", f.Hosts, names); err != nil {
		return fmt.Errorf("flow %s v%d: %w", f.Name, f.Version, err)
	}
	return nil
}

func validateSteps(steps []Step, prefix string, hosts []string, names map[string]bool) error {
	for i := range steps {
		s := &steps[i]
		if s.Name == "" || strings.ContainsAny(s.Name, " /.") {
			return invalidf("step %d under %q: name %q: want a non-empty name without spaces, dots or slashes", i+1, prefix, s.Name)
		}
		path := prefix + s.Name
		if names[s.Name] {
			return invalidf("step %s: the name %q is used twice (results are kept by name)", path, s.Name)
		}
		names[s.Name] = true
		kinds := 0
		for _, set := range []bool{s.Send != nil, s.HTTP != nil, s.Parallel != nil, s.Choice != nil, s.Sleep > 0, s.Until != "", s.Wait != nil, s.Notify != nil, s.Fail != ""} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return invalidf("step %s: set exactly one of send, http, parallel, choice, sleep, until, wait, notify, fail (it sets %d)", path, kinds)
		}
		switch {
		case s.Send != nil:
			if s.Send.Type != "$last" {
				if _, _, err := event.ParseType(s.Send.Type); err != nil {
					return fmt.Errorf("step %s: send: %w", path, err)
				}
			}
		case s.HTTP != nil:
			if s.HTTP.URL == "" {
				return invalidf("step %s: http: no url", path)
			}
			if u, ok := literalHost(s.HTTP.URL); ok && len(hosts) > 0 && !hostAllowed(hosts, u) {
				return invalidf("step %s: http: the host %s is not in the flow's hosts [%s]", path, u.Host, strings.Join(hosts, ", "))
			}
		case s.Wait != nil:
			if _, _, err := event.ParseType(s.Wait.Type); err != nil {
				return fmt.Errorf("step %s: wait: %w", path, err)
			}
		case s.Parallel != nil:
			if len(s.Parallel.Branches) == 0 {
				return invalidf("step %s: parallel: no branches", path)
			}
			if j := s.Parallel.Join; j != "" && j != "all" && j != "first" {
				return invalidf("step %s: parallel: join %q: want all or first", path, j)
			}
			for b, branch := range s.Parallel.Branches {
				if err := validateSteps(branch, fmt.Sprintf("%s/%d/", path, b), hosts, names); err != nil {
					return err
				}
			}
		case s.Choice != nil:
			for b, br := range s.Choice {
				if br.When != nil {
					switch br.When.Op {
					case "eq", "ne", "gt", "gte", "lt", "lte", "in", "exists":
					default:
						return invalidf("step %s: choice %d: op %q: want eq, ne, gt, gte, lt, lte, in or exists", path, b+1, br.When.Op)
					}
				}
				if err := validateSteps(br.Steps, fmt.Sprintf("%s/%d/", path, b), hosts, names); err != nil {
					return err
				}
			}
		}
		if s.Compensate != nil {
			if err := validateSteps([]Step{*s.Compensate}, path+"/compensate/", hosts, names); err != nil {
				return err
			}
		}
	}
	return nil
}

// literalHost is the URL template tmpl up to its host, when the template
// writes the host itself rather than taking it from a value.
func literalHost(tmpl string) (*url.URL, bool) {
	prefix, _, templated := strings.Cut(tmpl, "{{")
	_, rest, ok := strings.Cut(prefix, "://")
	if !ok || templated && !strings.ContainsAny(rest, "/?#") {
		return nil, false
	}
	u, err := url.Parse(prefix)
	return u, err == nil && u.Host != ""
}

// validHost says what is wrong with an entry of Flow.Hosts.
func validHost(h string) error {
	if net.ParseIP(h) != nil { // an IPv6 address without brackets
		return nil
	}
	u, err := url.Parse("http://" + h)
	if err != nil || h == "" || u.Host != h || u.User != nil || u.Hostname() == "" {
		return fmt.Errorf("want a host name or address, with a port or without (api.example.com, 127.0.0.1:8080), and no scheme or path")
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return baton.Errorf(baton.Invalid, "flow definition", format, args...)
}
