package bus

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/batonhq/baton"
)

// A record is a Message stored rather than sent: a flow's outbox keeps the
// commands a transition sends as records until they are published, and the
// embedded backend's queues hold records. It is a compact binary encoding of
// the attributes, the metadata and the data, written and read in one pass
// without a JSON envelope: what goes in was validated when it was published,
// and what comes out is handed on as it is.
//
//	version  1 byte (recordVersion)
//	kind     1 byte: recordEvent, or recordRaw for a Message with Raw set
//	event:   11 strings (uvarint length, bytes): id, source, specversion,
//	         type, subject, datacontenttype, dataschema, correlationid,
//	         causationid, traceparent, tracestate; time (a presence byte,
//	         then varint Unix seconds and uvarint nanoseconds); hops (varint)
//	raw:     2 strings: the routing type and the id
//	meta     uvarint count, then key and value strings
//	rest     the data (recordEvent) or the raw bytes (recordRaw)
//
// Records of version 1, written before tracestate, have the first 10
// strings only, and are still read.
const (
	recordVersion = 2
	recordEvent   = 0
	recordRaw     = 1
)

const nRecordStrings = 11

var errRecord = errors.New("corrupt message record")

func recordStrings(e *baton.Event) [nRecordStrings]*string {
	return [nRecordStrings]*string{&e.ID, &e.Source, &e.SpecVersion, &e.Type, &e.Subject,
		&e.DataContentType, &e.DataSchema, &e.CorrelationID, &e.CausationID, &e.TraceParent, &e.TraceState}
}

// AppendRecord appends the record of m to b.
func AppendRecord(b []byte, m Message) []byte {
	b = append(b, recordVersion)
	if m.Raw != nil {
		b = append(b, recordRaw)
		for _, s := range [...]string{m.Type, m.ID} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		b = appendMeta(b, m.Meta)
		return append(b, m.Raw...)
	}
	b = append(b, recordEvent)
	for _, s := range recordStrings(&m.Event) {
		b = binary.AppendUvarint(b, uint64(len(*s)))
		b = append(b, *s...)
	}
	if m.Time.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, m.Time.Unix())
		b = binary.AppendUvarint(b, uint64(m.Time.Nanosecond()))
	}
	b = binary.AppendVarint(b, int64(m.Hops))
	b = appendMeta(b, m.Meta)
	return append(b, m.Data...)
}

// RecordSize is an upper bound of the length of m's record, for sizing
// buffers.
func RecordSize(m Message) int {
	n := 2 + nRecordStrings*binary.MaxVarintLen32 + 1 + 2*binary.MaxVarintLen64 + binary.MaxVarintLen64 +
		len(m.ID) + len(m.Source) + len(m.SpecVersion) + len(m.Type) + len(m.Subject) + len(m.DataContentType) +
		len(m.DataSchema) + len(m.CorrelationID) + len(m.CausationID) + len(m.TraceParent) + len(m.TraceState) + len(m.Data) + len(m.Raw)
	n += binary.MaxVarintLen32
	for k, v := range m.Meta {
		n += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	return n
}

func appendMeta(b []byte, meta map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(meta)))
	for k, v := range meta {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// ParseRecord reads a record written by AppendRecord. The message does not
// hold on to b: its strings share one copy of the attributes, its data or
// raw bytes are another.
func ParseRecord(b []byte) (Message, error) {
	var m Message
	if len(b) < 2 || b[0] < 1 || b[0] > recordVersion || b[1] > recordRaw {
		return m, errRecord
	}
	strs := nRecordStrings
	if b[0] == 1 {
		strs-- // no tracestate
	}
	raw := b[1] == recordRaw
	r := reader{b: b, i: 2, ok: true}
	var spans [nRecordStrings][2]int
	if raw {
		spans[0], spans[1] = r.span(), r.span()
	} else {
		for i := range strs {
			spans[i] = r.span()
		}
		if r.byte() == 1 {
			sec := r.varint()
			nsec := r.uvarint()
			if r.ok && nsec < 1e9 {
				m.Time = time.Unix(sec, int64(nsec)).UTC()
			}
		}
		m.Hops = int(r.varint())
	}
	n := r.uvarint()
	if !r.ok || n > uint64(len(b)) {
		return Message{}, errRecord
	}
	var metaSpans [][2]int
	if n > 0 {
		metaSpans = make([][2]int, 2*n)
		for i := range metaSpans {
			metaSpans[i] = r.span()
		}
	}
	if !r.ok {
		return Message{}, errRecord
	}
	// Every string of the record is a slice of one copy of its head.
	head := string(b[:r.i])
	if raw {
		m.Type, m.ID = head[spans[0][0]:spans[0][1]], head[spans[1][0]:spans[1][1]]
	} else {
		for i, s := range recordStrings(&m.Event) {
			*s = head[spans[i][0]:spans[i][1]]
		}
	}
	if n > 0 {
		m.Meta = make(map[string]string, n)
		for i := 0; i < len(metaSpans); i += 2 {
			m.Meta[head[metaSpans[i][0]:metaSpans[i][1]]] = head[metaSpans[i+1][0]:metaSpans[i+1][1]]
		}
	}
	rest := append([]byte(nil), b[r.i:]...)
	if raw {
		m.Raw = rest
		if m.Raw == nil {
			m.Raw = []byte{} // empty, and still raw
		}
	} else if len(rest) > 0 {
		m.Data = rest
	}
	return m, nil
}

// reader reads a record; ok turns false, for good, at the first thing it
// cannot read.
type reader struct {
	b  []byte
	i  int
	ok bool
}

func (r *reader) uvarint() uint64 {
	if !r.ok {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		r.ok = false
		return 0
	}
	r.i += n
	return v
}

func (r *reader) varint() int64 {
	if !r.ok {
		return 0
	}
	v, n := binary.Varint(r.b[r.i:])
	if n <= 0 {
		r.ok = false
		return 0
	}
	r.i += n
	return v
}

func (r *reader) byte() byte {
	if !r.ok || r.i >= len(r.b) {
		r.ok = false
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

// span reads a length-prefixed string and returns where it is in b.
func (r *reader) span() [2]int {
	l := r.uvarint()
	if !r.ok || l > uint64(len(r.b)-r.i) {
		r.ok = false
		return [2]int{}
	}
	from := r.i
	r.i += int(l)
	return [2]int{from, r.i}
}
