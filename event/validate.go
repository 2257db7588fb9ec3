package event

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/jsonx"
)

// DefaultMaxSize is the largest encoded event accepted when no limit is
// configured.
const DefaultMaxSize = 1 << 20 // 1 MiB

// Validate checks the attributes of e: specversion "1.0" (checked first, so
// that an event of another version is refused for its version), id, source
// and a versioned type (see ParseType) are required, hops may not be negative, and
// no string attribute may hold invalid UTF-8 or a control character
// (CloudEvents 1.0 excludes U+0000-U+001F and U+007F-U+009F from its String
// type; it also keeps binary-mode headers safe). Time may be zero. Data is not
// inspected: Unmarshal and BinaryReader guarantee it is JSON, Marshal checks it.
func Validate(e baton.Event) error {
	return validate(&e, e.SpecVersion)
}

// validate takes the spec version apart so that Marshal can default it
// without copying the event.
func validate(e *baton.Event, specVersion string) error {
	// The version first: an event of another version may name its other
	// attributes differently, and its missing id would be a misleading
	// reason.
	switch specVersion {
	case baton.SpecVersion:
	case "":
		return invalidf(`missing required attribute "specversion"`)
	default:
		return invalidf(`unsupported specversion %q: Baton reads CloudEvents %q`, specVersion, baton.SpecVersion)
	}
	if err := required("id", e.ID); err != nil {
		return err
	}
	if err := required("source", e.Source); err != nil {
		return err
	}
	if e.Type == "" {
		return invalidf(`missing required attribute "type"`)
	}
	if _, _, reason := parseType(e.Type); reason != "" {
		return invalidf(`invalid attribute "type": %s`, typeError(e.Type, reason))
	}
	if !e.Time.IsZero() {
		// RFC 3339 has four-digit years.
		if y := e.Time.UTC().Year(); y < 0 || y > 9999 {
			return invalidf(`invalid attribute "time": year %d is outside 0-9999`, y)
		}
	}
	if e.Hops < 0 {
		return invalidf(`invalid attribute "hops": %d is negative`, e.Hops)
	}
	for _, a := range [...]struct{ name, value string }{
		{"subject", e.Subject},
		{"datacontenttype", e.DataContentType},
		{"dataschema", e.DataSchema},
		{"correlationid", e.CorrelationID},
		{"causationid", e.CausationID},
		{"traceparent", e.TraceParent},
		{"tracestate", e.TraceState},
	} {
		if reason := badString(a.value); reason != "" {
			return invalidf("invalid attribute %q: %s", a.name, reason)
		}
	}
	return nil
}

func required(name, value string) error {
	if value == "" {
		return invalidf("missing required attribute %q", name)
	}
	if reason := badString(value); reason != "" {
		return invalidf("invalid attribute %q: %s", name, reason)
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return baton.Errorf(baton.Invalid, "validate event", format, args...)
}

// badString says why s is not a CloudEvents String, or returns "".
func badString(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("control character %U at byte %d", c, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "invalid UTF-8 at byte " + strconv.Itoa(i)
		}
		if r <= 0x9f {
			return fmt.Sprintf("control character %U at byte %d", r, i)
		}
		i += size
	}
	return ""
}

// CheckSize refuses an encoded event of n bytes when it is over max; max <= 0
// means DefaultMaxSize.
func CheckSize(n, max int) error {
	if max <= 0 {
		max = DefaultMaxSize
	}
	if n > max {
		return baton.Errorf(baton.Invalid, "check size",
			"event is %d bytes, over the %d-byte limit (raise MaxEventSize to allow it)", n, max)
	}
	return nil
}

// CheckData refuses an event whose data is not JSON: Baton carries JSON
// data (text, of a non-JSON content type, as a JSON string), and a
// consumer's transport would refuse it.
func CheckData(e baton.Event) error {
	if len(e.Data) > 0 && !jsonx.Valid(e.Data) {
		return baton.Errorf(baton.Invalid, "check data", "data of %s %s is not valid JSON", e.Type, e.ID)
	}
	return nil
}

// Size is what MaxEventSize limits: the bytes of e's data and attribute
// values, about what it takes on the wire in binary mode (header names and
// framing aside). It is measured without encoding the event.
func Size(e baton.Event) int {
	n := len(e.Data) + len(e.ID) + len(e.Source) + len(e.SpecVersion) + len(e.Type) + len(e.Subject) +
		len(e.DataContentType) + len(e.DataSchema) + len(e.CorrelationID) + len(e.CausationID) + len(e.TraceParent) + len(e.TraceState)
	if !e.Time.IsZero() {
		n += len(time.RFC3339Nano)
	}
	if e.Hops != 0 {
		n += 4
	}
	return n
}
