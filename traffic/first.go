package traffic

import (
	"context"
	"time"
)

// After returns the sequence number from which Since reads the entries
// journaled at or after from: the start of a window, or of a live tail
// that begins a little in the past. It reads about twice log2(seq) single
// entries, never the whole journal.
func After(ctx context.Context, j Journal, from time.Time) (uint64, error) {
	return firstAfter(ctx, j, from)
}
