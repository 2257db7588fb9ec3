package orders

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/batonhq/baton"
)

// The effects services record in the Ledger.
const (
	EffectCharged   = "charged"   // payment
	EffectRefunded  = "refunded"  // payment
	EffectReserved  = "reserved"  // inventory
	EffectNotified  = "notified"  // notification
	EffectCompleted = "completed" // order
	EffectCancelled = "cancelled" // order
)

// Ledger is the outside world the services act on — payment provider,
// warehouse, mail server, order database — reduced to what a test needs: which
// effects happened to which order, and how often.
//
// Record takes an idempotency key, as a payment provider's API does: the same
// (order, effect, key) again is a no-op, the same (order, effect) under a new
// key is a second effect. Duplicates lists the orders that got one.
//
// With a path, every Record call is appended to the file as one JSON line
// with a single write(2) before Record returns, and the file is read back on
// open. There is no fsync: a record survives the process being killed
// (SIGKILL included, the kernel has it), not the machine losing power. One
// process at a time should write a ledger file; appends from several are not
// lost, but each sees only its own until it reopens the file.
//
// A Ledger is safe for concurrent use.
type Ledger struct {
	mu     sync.Mutex
	f      *os.File // nil in memory mode
	size   int64    // bytes of complete lines in f
	err    error    // sticky: the file could not be repaired after a failed write
	closed bool

	keys   map[ledgerRecord]struct{} // every (order, effect, key) recorded
	count  map[orderEffect]int       // distinct keys per (order, effect)
	calls  map[string]int            // Record calls per effect, repeats included
	totals map[string]int            // orders per effect
}

type orderEffect struct{ order, effect string }

type ledgerRecord struct {
	Order  string `json:"order"`
	Effect string `json:"effect"`
	Key    string `json:"key"`
}

// NewLedger opens the ledger kept in the file at path, creating it if
// needed, or a memory-only ledger for path "". A last line cut short by a
// crash is dropped; any other unreadable line is an error.
func NewLedger(path string) (*Ledger, error) {
	l := &Ledger{
		keys:   make(map[ledgerRecord]struct{}),
		count:  make(map[orderEffect]int),
		calls:  make(map[string]int),
		totals: make(map[string]int),
	}
	if path == "" {
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, baton.Errorf(baton.Unavailable, "open ledger", "%w", err)
	}
	if err := l.load(f); err != nil {
		f.Close()
		return nil, baton.Errorf(baton.Internal, "open ledger", "%s: %w", path, err)
	}
	l.f = f
	return l, nil
}

func (l *Ledger) load(f *os.File) error {
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				// Cut short mid-write: drop it, so the next record starts
				// on a line of its own.
				return f.Truncate(l.size)
			}
			return nil
		}
		if err != nil {
			return err
		}
		var rec ledgerRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if rec.Order == "" || rec.Effect == "" || rec.Key == "" {
			return fmt.Errorf("line %d: order, effect or key missing", n)
		}
		l.apply(rec)
		l.size += int64(len(line))
	}
}

// Record notes that effect happened to the order, under an idempotency key.
// Recording the same three again only counts a call.
func (l *Ledger) Record(orderID, effect, key string) error {
	if orderID == "" || effect == "" || key == "" {
		return baton.Errorf(baton.Invalid, "ledger record", "order %q, effect %q, key %q: none may be empty", orderID, effect, key)
	}
	rec := ledgerRecord{Order: orderID, Effect: effect, Key: key}
	var line []byte
	if l.f != nil {
		b, err := json.Marshal(rec)
		if err != nil {
			return baton.Errorf(baton.Internal, "ledger record", "%w", err)
		}
		line = append(b, '\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return baton.Errorf(baton.Unavailable, "ledger record", "ledger closed")
	}
	if l.err != nil {
		return l.err
	}
	if l.f != nil {
		if err := l.write(line); err != nil {
			return err
		}
	}
	l.apply(rec)
	return nil
}

// write appends one line with one write(2). After a failed write it cuts the
// file back to its last complete line, or refuses all further records when
// that fails too.
func (l *Ledger) write(line []byte) error {
	n, err := l.f.Write(line)
	if err == nil {
		l.size += int64(n)
		return nil
	}
	err = baton.Errorf(baton.Unavailable, "ledger record", "%w", err)
	if n > 0 {
		if terr := l.f.Truncate(l.size); terr != nil {
			l.err = baton.Errorf(baton.Internal, "ledger record", "cannot repair after %v: %w", err, terr)
		}
	}
	return err
}

func (l *Ledger) apply(rec ledgerRecord) {
	l.calls[rec.Effect]++
	if _, ok := l.keys[rec]; ok {
		return
	}
	l.keys[rec] = struct{}{}
	oe := orderEffect{rec.Order, rec.Effect}
	l.count[oe]++
	if l.count[oe] == 1 {
		l.totals[rec.Effect]++
	}
}

// Count is how many times effect happened to the order: the number of
// distinct keys it was recorded under.
func (l *Ledger) Count(orderID, effect string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[orderEffect{orderID, effect}]
}

// Calls is how many times Record was called for effect, repeats of a key
// included: more calls than effects means redeliveries reached the service.
func (l *Ledger) Calls(effect string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[effect]
}

// Totals maps each effect to the number of orders it happened to.
func (l *Ledger) Totals() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.totals)
}

// Orders lists, sorted, the orders effect happened to.
func (l *Ledger) Orders(effect string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	orders := make([]string, 0, l.totals[effect])
	for oe := range l.count {
		if oe.effect == effect {
			orders = append(orders, oe.order)
		}
	}
	slices.Sort(orders)
	return orders
}

// Duplicates describes, sorted, every effect that happened to an order more
// than once: "order o-000017: charged 2 times". None is nil.
func (l *Ledger) Duplicates() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var dups []orderEffect
	for oe, n := range l.count {
		if n > 1 {
			dups = append(dups, oe)
		}
	}
	slices.SortFunc(dups, func(a, b orderEffect) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.effect, b.effect))
	})
	var lines []string
	for _, oe := range dups {
		lines = append(lines, fmt.Sprintf("order %s: %s %d times", oe.order, oe.effect, l.count[oe]))
	}
	return lines
}

// Close closes the ledger's file; Record fails after it, reads still work.
// Closing twice is not an error.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	if err := l.f.Close(); err != nil {
		return baton.Errorf(baton.Internal, "close ledger", "%w", err)
	}
	return nil
}
