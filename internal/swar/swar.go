// Package swar holds word-at-a-time tests ("SIMD within a register") for the
// fast paths of the hand-written JSON scanners and encoders: each tells
// whether any of the 8 bytes in a word is of a kind, so a run of plain text
// costs one test per 8 bytes. The formulas are exact as booleans (Bit
// Twiddling Hacks, "determine if a word has a byte less than n", n <= 128).
package swar

const (
	ones = 0x0101010101010101

	// Highs masks the high bit of each byte: x&Highs != 0 when a byte of
	// x is not ASCII.
	Highs = 0x8080808080808080
)

// Load64 reads 8 bytes of s from i, little-endian; the compiler makes it one
// load.
func Load64[T string | []byte](s T, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// HasLess reports a byte < n, for n <= 128.
func HasLess(x uint64, n byte) uint64 { return (x - ones*uint64(n)) &^ x & Highs }

// HasByte reports a byte equal to c.
func HasByte(x uint64, c byte) uint64 {
	v := x ^ ones*uint64(c)
	return (v - ones) &^ v & Highs
}
