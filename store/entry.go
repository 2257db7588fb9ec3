package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// entryV1 starts a journal entry in the binary encoding. Entries written
// before it are JSON documents, which start with '{': both are read.
const entryV1 = 1

// AppendEntry appends e, without its Seq (the store keeps it beside), to
// b: a version byte, the time as Unix seconds, nanoseconds and zone offset,
// the fields in their declaration order (strings and the caused ids as a
// length and the bytes, numbers as varints). A journal writes an entry for
// every delivery a handler settles and every event published, so stores
// that keep entries as opaque values use this instead of encoding/json,
// which cost several times more. ParseEntry reads it back.
func AppendEntry(b []byte, e *Entry) []byte {
	b = append(b, entryV1)
	_, off := e.Time.Zone()
	b = binary.AppendVarint(b, e.Time.Unix())
	b = binary.AppendUvarint(b, uint64(e.Time.Nanosecond()))
	b = binary.AppendVarint(b, int64(off))
	for _, s := range [...]string{e.CorrelationID, string(e.Outcome), e.EventID, e.EventType, e.Subject, e.Source, e.Group} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, int64(e.Attempt))
	b = binary.AppendVarint(b, int64(e.Duration))
	b = appendString(b, e.Error)
	b = binary.AppendUvarint(b, uint64(len(e.Caused)))
	for _, id := range e.Caused {
		b = appendString(b, id)
	}
	return appendString(b, e.TraceID)
}

// EntrySize bounds the length of AppendEntry's encoding of e: the version
// byte; five 64-bit varints (the time's seconds, nanoseconds and offset,
// the attempt, the duration); and a length of at most five bytes (under
// 32 GiB) for each string and for the list of caused ids.
func EntrySize(e *Entry) int {
	const v, l = binary.MaxVarintLen64, 5
	n := 1 + 5*v + 11*l + len(e.CorrelationID) + len(e.Outcome) + len(e.EventID) + len(e.EventType) +
		len(e.Subject) + len(e.Source) + len(e.Group) + len(e.Error) + len(e.TraceID)
	for _, id := range e.Caused {
		n += l + len(id)
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorruptEntry = errors.New("corrupt journal entry")

// ParseEntry reads an entry AppendEntry wrote, or one a store wrote as JSON
// before it, and gives it seq.
func ParseEntry(seq uint64, v []byte) (Entry, error) {
	var e Entry
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &e); err != nil {
			return e, err
		}
		e.Seq = seq
		return e, nil
	}
	if len(v) == 0 || v[0] != entryV1 {
		return e, errCorruptEntry
	}
	d := entryDecoder{b: v[1:]}
	sec, nsec, off := d.varint(), d.uvarint(), d.varint()
	e.CorrelationID = d.str()
	e.Outcome = Outcome(d.str())
	e.EventID, e.EventType, e.Subject, e.Source, e.Group = d.str(), d.str(), d.str(), d.str(), d.str()
	e.Attempt = int(d.varint())
	e.Duration = time.Duration(d.varint())
	e.Error = d.str()
	if n := d.uvarint(); n > 0 && n <= uint64(len(d.b)) {
		e.Caused = make([]string, n)
		for i := range e.Caused {
			e.Caused[i] = d.str()
		}
	} else if n > 0 {
		d.bad = true
	}
	e.TraceID = d.str()
	if d.bad || len(d.b) != 0 || nsec >= uint64(time.Second) {
		return Entry{}, errCorruptEntry
	}
	e.Time = entryTime(sec, int64(nsec), int(off))
	e.Seq = seq
	return e, nil
}

// entryTime rebuilds a time in the zone it was written in, as
// encoding/json reads one back from its offset: UTC, the local zone when
// the offset is the local one at that instant, or a fixed zone.
func entryTime(sec, nsec int64, off int) time.Time {
	t := time.Unix(sec, nsec)
	if off == 0 {
		return t.UTC()
	}
	if _, local := t.Zone(); local == off {
		return t
	}
	return t.In(time.FixedZone("", off))
}

type entryDecoder struct {
	b   []byte
	bad bool
}

func (d *entryDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *entryDecoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
