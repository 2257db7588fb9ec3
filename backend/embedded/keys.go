package embedded

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/batonhq/baton/bus"
)

// Key layout. Every key starts with one byte naming its kind; sequence
// numbers and times are big-endian so that keys sort in their order.
//
//	m                          the last sequence number handed out
//	g<group>                   a declared consumer group -> its patterns
//	q<group>\x00<seq>          a message waiting in a group's queue -> record
//	r<due><group>\x00<seq>     a message waiting to be redelivered -> record
//	i<group>\x00<id>           an inbox mark -> its expiry
//	x<expiry><group>\x00<id>   the inbox marks by expiry, for the sweeper
//	j<seq>                     a journal entry -> JSON
//	c<correlation>\x00<seq>    the journal by correlation id
//	d<seq>                     a dead letter -> JSON
//	R<run id>                  a flow run -> JSON
//	V<run id>                  its revision and wake time (8+8 bytes), written
//	                           by earlier versions, read no more (the
//	                           document has them), deleted with the run
//	W<time><run id>            the runs by a time at or before their wake
//	                           time (runs.go, indexAt)
//	K<flow>\x00<key>            a run by flow and business key -> run id
//	C<created><run id>         the runs by creation time
//	F<flow>\x00<created><id>    the runs of one flow by creation time
//	H<name>                    a schedule -> JSON
//	w<delivery id>             a webhook delivery -> JSON (webhooks.go)
//	v<webhook>\x00<next><id>    the deliveries of a webhook by next attempt
const (
	kindMeta    = 'm'
	kindGroup   = 'g'
	kindQueue   = 'q'
	kindRetry   = 'r'
	kindInbox   = 'i'
	kindExpiry  = 'x'
	kindJournal = 'j'
	kindCorr    = 'c'
	kindDead    = 'd'
	kindRun     = 'R'
	kindRunRev  = 'V'
	kindRunKey  = 'K'
	kindCreated = 'C'
	kindFlow    = 'F'
	kindSched   = 'H'
	kindWake    = 'W'
)

var metaKey = []byte{kindMeta}

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendTime(b []byte, t time.Time) []byte { return appendU64(b, uint64(t.UnixNano())) }

func queueKey(group string, seq uint64) []byte {
	b := make([]byte, 0, 2+len(group)+8)
	b = append(b, kindQueue)
	b = append(b, group...)
	b = append(b, 0)
	return appendU64(b, seq)
}

// queueBounds returns the key range of group's queue from seq on, up to but
// not including seq end.
func queueBounds(group string, from, end uint64) (lo, hi []byte) {
	return queueKey(group, from), queueKey(group, end)
}

func retryKey(due time.Time, group string, seq uint64) []byte {
	b := make([]byte, 0, 1+8+len(group)+1+8)
	b = append(b, kindRetry)
	b = appendTime(b, due)
	b = append(b, group...)
	b = append(b, 0)
	return appendU64(b, seq)
}

// parseRetryKey returns the group of a retry key.
func parseRetryKey(k []byte) (string, error) {
	if len(k) < 1+8+1+8 {
		return "", errors.New("short retry key")
	}
	return string(k[9 : len(k)-9]), nil
}

func prefixKey(kind byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, kind)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func inboxKey(group, id string) []byte { return prefixKey(kindInbox, group, id) }

func expiryKey(at time.Time, group, id string) []byte {
	b := make([]byte, 0, 1+8+len(group)+1+len(id))
	b = append(b, kindExpiry)
	b = appendTime(b, at)
	b = append(b, group...)
	b = append(b, 0)
	return append(b, id...)
}

func seqKey(kind byte, seq uint64) []byte { return appendU64([]byte{kind}, seq) }

func corrKey(corr string, seq uint64) []byte {
	b := make([]byte, 0, 1+len(corr)+1+8)
	b = append(b, kindCorr)
	b = append(b, corr...)
	b = append(b, 0)
	return appendU64(b, seq)
}

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	b := append([]byte(nil), p...)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return b[:i+1]
		}
	}
	return nil
}

// record is a message in a queue: its delivery attempt, whether it came
// from outside (a Publish rather than a handler's commit), and the message.
// On disk it is the attempt (uvarint), the external flag (a byte) and the
// message's bus record: a compact binary encoding of its attributes,
// metadata and data, not a JSON envelope, so that writing it is one copy
// and reading it one pass. A message still in memory when its group takes
// it is handed on as it was published, not read back at all.
type record struct {
	seq      uint64
	attempt  int
	external bool
	msg      bus.Message
}

func encodeRecord(rec record) []byte {
	b := appendRecordHead(make([]byte, 0, binary.MaxVarintLen32+1+bus.RecordSize(rec.msg)), rec)
	return bus.AppendRecord(b, rec.msg)
}

func appendRecordHead(b []byte, rec record) []byte {
	b = binary.AppendUvarint(b, uint64(rec.attempt))
	if rec.external {
		return append(b, 1)
	}
	return append(b, 0)
}

var errCorrupt = errors.New("corrupt queue record")

func decodeRecord(seq uint64, b []byte) (record, error) {
	r := record{seq: seq}
	attempt, n := binary.Uvarint(b)
	if n <= 0 {
		return r, errCorrupt
	}
	r.attempt, b = int(attempt), b[n:]
	if len(b) == 0 {
		return r, errCorrupt
	}
	r.external, b = b[0] == 1, b[1:]
	m, err := bus.ParseRecord(b)
	if err != nil {
		return r, errCorrupt
	}
	r.msg = m
	return r, nil
}

// delivery is what a consumer is handed for rec: the message as it is, or,
// for raw bytes, what they read as in structured mode.
func (rec *record) delivery() bus.Delivery {
	if rec.msg.Raw != nil {
		return bus.Structured(rec.msg.Type, rec.msg.ID, rec.msg.Raw, rec.msg.Meta)
	}
	return bus.Delivery{Message: rec.msg}
}
