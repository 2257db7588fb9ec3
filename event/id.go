package event

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// NewID returns a new random event id: a ULID, 26 characters of Crockford
// base32 holding a 48-bit millisecond timestamp and 80 random bits from
// crypto/rand. Ids sort by creation time to the millisecond, which keeps
// journals and dead-letter listings readable.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	b[0] = byte(ms >> 40)
	b[1] = byte(ms >> 32)
	b[2] = byte(ms >> 24)
	b[3] = byte(ms >> 16)
	b[4] = byte(ms >> 8)
	b[5] = byte(ms)
	// crypto/rand.Read never fails on the platforms Go supports; it crashes
	// the program rather than return predictable bytes.
	_, _ = rand.Read(b[6:])
	return encodeULID(&b)
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// encodeULID writes the 128 bits of b as 26 base32 digits, most significant
// first; the first digit carries only the top 3 bits.
func encodeULID(b *[16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// OutputID returns the id of the index-th event that handler emitted while
// handling the event inputID: 32 hex digits, the first 128 bits of a SHA-256
// over the three values. A redelivered input therefore yields the same output
// ids, which is what lets consumers drop the duplicates.
//
// The values are length-prefixed before hashing, so no two different triples
// hash the same input ("ab","c" vs "a","bc").
func OutputID(inputID, handler string, index int) string {
	var buf [128]byte
	p := buf[:0]
	p = binary.AppendUvarint(p, uint64(len(inputID)))
	p = append(p, inputID...)
	p = binary.AppendUvarint(p, uint64(len(handler)))
	p = append(p, handler...)
	p = binary.BigEndian.AppendUint64(p, uint64(index))
	sum := sha256.Sum256(p)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}
