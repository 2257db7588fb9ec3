package store

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/batonhq/baton/internal/jsonx"
)

// AppendRun appends r as JSON to b: the same document encoding/json writes,
// several times faster, for stores that save a run on every transition.
// json.Unmarshal reads it back.
func AppendRun(b []byte, r *Run) []byte {
	// Room for the whole document at once: it is mostly the raw members,
	// and grown by doubling it would be allocated and copied several times.
	if n := runSizeHint(r); cap(b)-len(b) < n {
		b = append(make([]byte, 0, len(b)+n), b...)
	}
	b = append(b, `{"id":`...)
	b = jsonx.AppendString(b, r.ID)
	b = append(b, `,"flow":`...)
	b = jsonx.AppendString(b, r.Flow)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, `,"key":`...)
	b = jsonx.AppendString(b, r.Key)
	b = append(b, `,"status":`...)
	b = jsonx.AppendString(b, string(r.Status))
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonx.AppendString(b, r.Error)
	}
	b = append(b, `,"created":`...)
	b = appendTime(b, r.Created)
	b = append(b, `,"updated":`...)
	b = appendTime(b, r.Updated)
	b = append(b, `,"rev":`...)
	b = strconv.AppendInt(b, r.Rev, 10)
	if !r.Wake.IsZero() {
		b = append(b, `,"wake":`...)
		b = appendTime(b, r.Wake)
	}
	if r.TraceParent != "" {
		b = append(b, `,"traceparent":`...)
		b = jsonx.AppendString(b, r.TraceParent)
	}
	if r.TraceState != "" {
		b = append(b, `,"tracestate":`...)
		b = jsonx.AppendString(b, r.TraceState)
	}
	b = appendRaw(b, `,"input":`, r.Input)
	b = appendRaw(b, `,"result":`, r.Result)
	b = appendRaw(b, `,"data":`, r.Data)
	if len(r.Steps) > 0 {
		b = append(b, `,"steps":{`...)
		first := true
		for path, st := range r.Steps {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = jsonx.AppendString(b, path)
			b = append(b, ':')
			b = appendStep(b, st)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// runSizeHint is about the size of r's document, escapes aside: the
// strings and raw members, and at most the fixed members of the run and of
// a step (names, times, counts).
func runSizeHint(r *Run) int {
	const run, step = 320, 240
	n := run + len(r.ID) + len(r.Flow) + len(r.Key) + len(r.Error) + len(r.TraceParent) + len(r.TraceState) +
		len(r.Input) + len(r.Result) + len(r.Data)
	for path, st := range r.Steps {
		n += step + len(path)
		if st != nil {
			n += len(st.Error)
		}
	}
	return n
}

func appendStep(b []byte, st *StepState) []byte {
	if st == nil {
		// As encoding/json writes it: a stored run whose document says
		// null for a step (the coordinator reads it as a step not
		// started) is saved again instead of crashing the coordinator.
		return append(b, "null"...)
	}
	b = append(b, `{"status":`...)
	b = jsonx.AppendString(b, string(st.Status))
	if st.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(st.Attempts), 10)
	}
	if st.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonx.AppendString(b, st.Error)
	}
	if !st.Started.IsZero() {
		b = append(b, `,"started":`...)
		b = appendTime(b, st.Started)
	}
	if !st.Ended.IsZero() {
		b = append(b, `,"ended":`...)
		b = appendTime(b, st.Ended)
	}
	if st.Branch != 0 {
		b = append(b, `,"branch":`...)
		b = strconv.AppendInt(b, int64(st.Branch), 10)
	}
	if !st.Due.IsZero() {
		b = append(b, `,"due":`...)
		b = appendTime(b, st.Due)
	}
	if st.Backoff {
		b = append(b, `,"backoff":true`...)
	}
	return append(b, '}')
}

// appendRaw appends a member holding raw JSON, which must be valid: the
// coordinator only stores JSON it parsed or built.
func appendRaw(b []byte, member string, v json.RawMessage) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, member...)
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
