package jsonx

import (
	"bytes"
	"encoding/json"

	"github.com/tidwall/gjson"
)

// maxDepth is encoding/json's limit on nesting: deeper input is invalid to
// it.
const maxDepth = 10000

// Valid reports whether b is valid JSON, accepting exactly what
// encoding/json's Valid accepts, about three times as fast on an event's
// data (it checks every event published and every handler's outputs).
// gjson's validator answers the same (FuzzValidMatchesEncodingJSON checks
// it) except for nesting deeper than encoding/json's limit, which gjson
// accepts with a stack as deep: input that could nest that deep goes to
// encoding/json.
func Valid(b []byte) bool {
	if bytes.Count(b, []byte{'['})+bytes.Count(b, []byte{'{'}) > maxDepth {
		return json.Valid(b)
	}
	return gjson.ValidBytes(b)
}
