// Package embedded is Baton's default backend: the bus and the store in one
// data directory, on pebble (CockroachDB's LSM engine). It needs no other
// process.
//
// Every write is fsynced before it is acknowledged, and concurrent writers
// share fsyncs: one goroutine gathers all waiting writes into a batch. A
// Commit — consuming a message, publishing what its handler emitted, marking
// the inbox, journaling, dead-lettering — is one atomic batch, so on this
// backend a handler's outputs appear exactly once. Queued messages live on
// disk; each consumer group keeps at most a small window of them in memory.
//
// One process at a time opens a data directory.
package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/bus"
	"github.com/batonhq/baton/store"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Config configures a Backend. The zero value of every field but Dir means
// the documented default.
type Config struct {
	// Dir is the data directory, created if missing. Empty with Memory.
	Dir string
	// Memory keeps everything in memory (pebble's in-memory filesystem), for
	// tests; nothing survives Close.
	Memory bool
	// Window is how many queued messages each group keeps loaded in memory
	// ahead of its consumers (default 1024). The rest wait on disk.
	Window int
	// InboxRetention is how long a handled event id is remembered (default
	// 24h): a duplicate arriving later is handled again.
	InboxRetention time.Duration
	// MemTableSize is the size of each of pebble's memtables, in bytes
	// (default 64 MiB). Up to four fill before writes wait for a flush, so
	// writes use up to four times this much memory; smaller memtables flush
	// more often.
	MemTableSize int64
	// CacheSize is pebble's block cache, in bytes (default 128 MiB): what
	// reads of the data directory (a backlog waiting on disk, the journal,
	// runs) find without going to the disk.
	CacheSize int64
	// Retention bounds the journal, the ended runs and the dead letters
	// (zero: store.Retention's defaults); they are swept in the background.
	Retention store.Retention
	// Logger receives background errors (default: discarded).
	Logger *slog.Logger
}

const (
	defaultWindow       = 1024
	defaultRetention    = 24 * time.Hour
	defaultMemTableSize = 64 << 20
	defaultCacheSize    = 128 << 20
)

// Backend is the embedded bus and store.
type Backend struct {
	cfg Config
	db  *pebble.DB

	requests chan *request
	toSync   chan *applied
	synced   chan struct{} // closed when the syncer has finished
	closing  chan struct{} // closed when Close begins: background loops stop
	closed   sync.Once

	writing      sync.RWMutex // guards writesClosed against writes.Add
	writesClosed bool
	reading      sync.RWMutex // held by reads; Close takes it to close the database
	readsClosed  bool
	writes       sync.WaitGroup // write calls under way
	bg           sync.WaitGroup

	// horizon is the last sequence number whose batch is durable; readers
	// of queues never look past it.
	horizon atomic.Uint64
	// rounds counts the batches applied (visible, maybe not yet durable).
	rounds atomic.Uint64
	misses misses                     // of the inbox, found by Seen, taken by commits
	recent [recentRounds]recentWrites // owned by the writer goroutine
	revs   map[string]revision        // owned by the writer goroutine

	mu     sync.RWMutex
	groups map[string]*group
	routes map[string][]*group // type -> groups, rebuilt on declare

	retryWake chan struct{}
	now       func() time.Time
	sweeps    *store.Sweeps

	// failure is set, once, when a write or an fsync of the data directory
	// failed (see fail); stopped is closed then or by Close.
	failure  atomic.Pointer[baton.Error]
	failOnce sync.Once
	stopped  chan struct{}
	stop     sync.Once

	// deliveries serializes the webhook outbox's claims and settlements
	// (webhooks.go).
	deliveries sync.Mutex
}

var (
	_ bus.Transport      = (*Backend)(nil)
	_ bus.Committer      = (*Backend)(nil)
	_ bus.CommitStorer   = (*Backend)(nil)
	_ store.Store        = (*Backend)(nil)
	_ store.Expirer      = (*Backend)(nil)
	_ bus.GroupPublisher = (*Backend)(nil)
	_ store.Deliveries   = (*Backend)(nil)
)

var errClosed = baton.Errorf(baton.Unavailable, "embedded", "backend is closed")

func unavailable(op string, err error) error {
	return &baton.Error{Code: baton.Unavailable, Op: "embedded " + op, Err: err}
}

// Open opens (or creates) the data directory and starts the backend. The
// directory is created 0700 and the files in it 0600: they hold every
// payload.
//
// A failed write or fsync of the data directory stops the backend for
// good, as PostgreSQL stops on a failed fsync: after it the disk may not
// hold what was acknowledged as written, and retrying the fsync would only
// hide that. Every later call fails with the reason, Stopped is closed and
// Err says why; the owner should close the backend and exit, and the next
// Open replays pebble's log.
func Open(cfg Config) (*Backend, error) {
	if cfg.Memory {
		return openOn(cfg, vfs.NewMem())
	}
	return openOn(cfg, privateFS{vfs.Default})
}

// openOn is Open on the filesystem fs.
func openOn(cfg Config, fs vfs.FS) (*Backend, error) {
	if cfg.Dir == "" && !cfg.Memory {
		return nil, baton.Errorf(baton.Invalid, "embedded open", "no data directory given")
	}
	if cfg.Window <= 0 {
		cfg.Window = defaultWindow
	}
	if cfg.InboxRetention <= 0 {
		cfg.InboxRetention = defaultRetention
	}
	if cfg.MemTableSize <= 0 {
		cfg.MemTableSize = defaultMemTableSize
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = defaultCacheSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Retention = cfg.Retention.WithDefaults()
	opts := &pebble.Options{
		MemTableSize:                uint64(cfg.MemTableSize),
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		Logger:                      quietLogger{cfg.Logger},
	}
	opts.Experimental.L0CompactionConcurrency = 2
	// Inbox lookups mostly miss (the id is new): bloom filters answer those
	// without reading blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	cache := pebble.NewCache(cfg.CacheSize)
	defer cache.Unref()
	opts.Cache = cache
	opts.FS = fs
	dir := cfg.Dir
	if cfg.Memory {
		dir = ""
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "lock") {
			return nil, baton.Errorf(baton.Unavailable, "embedded open",
				"data directory %s is in use by another process (is a baton demo or server running on it?): %w", cfg.Dir, err)
		}
		return nil, unavailable("open "+cfg.Dir, err)
	}
	b := &Backend{
		cfg:       cfg,
		db:        db,
		requests:  make(chan *request, 4*maxRound),
		toSync:    make(chan *applied, 8),
		synced:    make(chan struct{}),
		closing:   make(chan struct{}),
		groups:    make(map[string]*group),
		routes:    make(map[string][]*group),
		retryWake: make(chan struct{}, 1),
		revs:      make(map[string]revision),
		now:       time.Now,
		stopped:   make(chan struct{}),
	}
	if !cfg.Memory {
		if fi, err := os.Stat(cfg.Dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			cfg.Logger.Warn("embedded: the data directory can be read by other users; make it private with chmod 700",
				"dir", cfg.Dir, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
		}
	}
	last, err := b.load()
	if err != nil {
		db.Close()
		return nil, err
	}
	b.horizon.Store(last)
	b.sweeps = store.NewSweeps("embedded", cfg.Logger, b.cfg.Retention, store.SweepSteps{
		Journal: b.sweepJournal, Runs: b.sweepRuns, DeadBefore: b.sweepDeadBefore, DeadOverCap: b.sweepDeadOverCap})
	go b.runWriter(last)
	go b.runSyncer()
	b.bg.Add(3)
	go b.runRetries()
	go b.runSweeper()
	go func() {
		defer b.bg.Done()
		b.sweeps.Run(b.closing, func(err error) bool { return errors.Is(err, errClosed) })
	}()
	return b, nil
}

// load reads the last sequence number and the declared groups.
func (b *Backend) load() (uint64, error) {
	var last uint64
	v, closer, err := b.db.Get(metaKey)
	switch {
	case err == nil:
		last = binary.BigEndian.Uint64(v)
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return 0, unavailable("load", err)
	}
	iter, err := b.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindGroup}, UpperBound: []byte{kindGroup + 1}})
	if err != nil {
		return 0, unavailable("load", err)
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		name := string(iter.Key()[1:])
		var patterns []string
		if len(iter.Value()) > 0 {
			patterns = strings.Split(string(iter.Value()), "\n")
		}
		b.groups[name] = newGroup(b, name, patterns, true)
	}
	return last, iter.Error()
}

// Close stops the backend: writes already requested are finished, then the
// database is closed. Subscriptions stop receiving.
func (b *Backend) Close() error {
	var err error
	b.closed.Do(func() {
		// Stop the background loops, refuse new writes, let the writes
		// under way finish, then stop the writer.
		close(b.closing)
		b.writing.Lock()
		b.writesClosed = true
		b.writing.Unlock()
		b.writes.Wait()
		close(b.requests)
		<-b.synced
		b.bg.Wait()
		b.mu.RLock()
		for _, g := range b.groups {
			g.shutdown()
		}
		b.mu.RUnlock()
		b.reading.Lock()
		b.readsClosed = true
		b.reading.Unlock()
		err = b.db.Close()
		b.stop.Do(func() { close(b.stopped) })
	})
	return err
}

// Stopped is closed when the backend stops: when Close has closed it, or
// when a write or an fsync of the data directory failed (Err says so).
func (b *Backend) Stopped() <-chan struct{} { return b.stopped }

// Err is why the backend stopped by itself: nil unless a write or an fsync
// of the data directory failed.
func (b *Backend) Err() error {
	if f := b.failure.Load(); f != nil {
		return f
	}
	return nil
}

// fail stops the backend for good after a write or an fsync failed: what
// it acknowledges from now on could be lost, so it acknowledges nothing.
func (b *Backend) fail(cause error) *baton.Error {
	b.failOnce.Do(func() {
		where := b.cfg.Dir
		if b.cfg.Memory {
			where = "(in memory)"
		}
		b.failure.Store(&baton.Error{Code: baton.Internal, Op: "embedded", Err: fmt.Errorf(
			"writing to the data directory %s failed, so it may not hold what was written: %w; the backend has stopped: check the disk, then start again (the log is replayed)", where, cause)})
		b.cfg.Logger.Error("embedded: a write or fsync of the data directory failed; stopping, since what was acknowledged may not be on disk", "dir", where, "err", cause)
		b.mu.RLock()
		for _, g := range b.groups {
			g.shutdown()
		}
		b.mu.RUnlock()
		b.stop.Do(func() { close(b.stopped) })
	})
	return b.failure.Load()
}

// reader guards a read against Close: call done when the read is over.
func (b *Backend) reader() (done func(), err error) {
	if f := b.failure.Load(); f != nil {
		return nil, f
	}
	b.reading.RLock()
	if b.readsClosed {
		b.reading.RUnlock()
		return nil, errClosed
	}
	return b.reading.RUnlock, nil
}

// Publish durably enqueues msgs for every group whose patterns match.
func (b *Backend) Publish(ctx context.Context, msgs ...bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	return b.Commit(ctx, bus.Commit{Publish: msgs})
}

// enqueueTo writes rec into g's queue.
func (r *round) enqueueTo(g *group, rec record) error {
	return r.enqueueEncoded(g, rec, encodeRecord(rec))
}

// enqueueEncoded is enqueueTo with the record already encoded.
func (r *round) enqueueEncoded(g *group, rec record, val []byte) error {
	rec.seq = r.nextSeq()
	if err := r.set(queueKey(g.name, rec.seq), val); err != nil {
		return err
	}
	r.after(func() { g.arrived(rec) })
	return nil
}

// PublishTo durably enqueues msgs for one group only, as bus.Replay wants.
func (b *Backend) PublishTo(ctx context.Context, group string, msgs ...bus.Message) error {
	b.mu.RLock()
	g := b.groups[group]
	b.mu.RUnlock()
	if g == nil {
		return baton.Errorf(baton.NotFound, "publish to "+group, "no such consumer group")
	}
	return b.write(func(r *round) error {
		for _, m := range msgs {
			if err := r.enqueueTo(g, record{attempt: 1, external: true, msg: m}); err != nil {
				return err
			}
		}
		return nil
	})
}

// maxRoutes bounds the types whose groups route caches.
const maxRoutes = 4096

func (b *Backend) route(typ string) []*group {
	b.mu.RLock()
	gs, ok := b.routes[typ]
	b.mu.RUnlock()
	if ok {
		return gs
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	gs = nil
	for _, g := range b.groups {
		if g.matches(typ) {
			gs = append(gs, g)
		}
	}
	// Publishers choose types, and each distinct one cached would stay in
	// memory until the next Subscribe: a type no group takes is not
	// cached, and a full cache starts again.
	if len(gs) > 0 {
		if len(b.routes) >= maxRoutes {
			clear(b.routes)
		}
		b.routes[typ] = gs
	}
	return gs
}

// Subscribe declares group durably with patterns (replacing earlier ones)
// and returns a consumer of it.
func (b *Backend) Subscribe(ctx context.Context, name string, patterns []string) (bus.Subscription, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return nil, baton.Errorf(baton.Invalid, "subscribe", "group name %q is empty or contains NUL", name)
	}
	if len(patterns) == 0 {
		return nil, baton.Errorf(baton.Invalid, "subscribe", "group %s: no type patterns", name)
	}
	for _, p := range patterns {
		if p == "" || strings.ContainsAny(p, "\n\x00") {
			return nil, baton.Errorf(baton.Invalid, "subscribe", "group %s: bad pattern %q", name, p)
		}
	}
	b.mu.Lock()
	g, ok := b.groups[name]
	changed := !ok || strings.Join(g.patterns, "\n") != strings.Join(patterns, "\n")
	b.mu.Unlock()
	if changed {
		// Declare first and route after: a message published from now on
		// reaches the group.
		err := b.write(func(r *round) error {
			return r.set(append([]byte{kindGroup}, name...), []byte(strings.Join(patterns, "\n")))
		})
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		if g, ok = b.groups[name]; ok {
			g.setPatterns(patterns)
		} else {
			g = newGroup(b, name, patterns, false)
			b.groups[name] = g
		}
		clear(b.routes)
		b.mu.Unlock()
	}
	return g.subscribe(), nil
}

// CommitStore is the store b's commits write to: b itself. A value that
// embeds b (to watch or wrap its subscriptions) promotes it, so that
// bus.New and flow.New accept it beside b as its store, and refuse b beside
// any other store.
func (b *Backend) CommitStore() bus.Store { return b }

// Commit applies c atomically; see bus.Commit.
func (b *Backend) Commit(ctx context.Context, c bus.Commit) error {
	return b.CommitAsync(ctx, c)(ctx)
}

// CommitAsync starts applying c atomically and returns at once; the
// function it returns waits until c is durable and returns what Commit
// would have (see bus.AsyncCommitter). It must be called, once.
func (b *Backend) CommitAsync(ctx context.Context, c bus.Commit) func(context.Context) error {
	var sub *subscription
	var rec record
	// failed ends a commit that failed before it reached the writer: the
	// delivery, if claimed, goes back in flight.
	failed := func(err error) func(context.Context) error {
		if sub != nil {
			sub.release(rec.seq, err)
		}
		return func(context.Context) error { return err }
	}
	if c.Delivery != nil {
		ref, ok := c.Delivery.Ref.(*inflight)
		if !ok {
			return failed(baton.Errorf(baton.Invalid, "commit", "delivery is not from this backend"))
		}
		if err := ref.sub.claim(ref); err != nil {
			return failed(err)
		}
		sub, rec = ref.sub, ref.rec
	}
	// Encode outside the writer, which is one goroutine for the whole
	// backend: it only numbers and writes.
	vals := make([][]byte, len(c.Publish))
	for i, m := range c.Publish {
		vals[i] = encodeRecord(record{attempt: 1, external: sub == nil, msg: m})
	}
	jvals := encodeEntries(c.Journal)
	var dead []byte
	var err error
	if c.Dead != nil {
		if dead, err = b.encodeDead(*c.Dead); err != nil {
			return failed(err)
		}
	}
	// Only a message that came from outside can arrive twice: what a
	// handler emits is written once, in the commit that consumed its cause.
	// So only those consult the inbox. The lookup happens here, and the
	// writer completes it with the writes made since.
	var ik, mark []byte
	var pre uint64
	marked := false
	checkID := c.Handled
	if checkID == "" && c.Retry && sub != nil {
		checkID = rec.msg.ID
	}
	if checkID != "" && (sub == nil || rec.external) {
		ik = inboxKey(c.Group, checkID)
		// A miss Seen found serves while the writer still remembers the
		// rounds written since; otherwise the key is read again.
		var hit bool
		if pre, hit = b.misses.take(ik); !hit || b.rounds.Load()-pre >= recentRounds/2 {
			if mark, marked, pre, err = b.read(ik); err != nil {
				return failed(err)
			}
		}
	}
	// duplicate is written by the writer before done receives.
	duplicate := false
	done := b.submit(func(r *round) error {
		if ik != nil {
			v, ok, err := r.readAfter(ik, pre, mark, marked)
			if err != nil {
				return err
			}
			if ok && !expired(v, b.now()) {
				if err := r.duplicate(c, checkID, rec); err != nil {
					return err
				}
				duplicate = true
				return nil
			}
			if c.Handled != "" {
				if err := r.markSeen(c.Group, c.Handled); err != nil {
					return err
				}
			}
		}
		var replyTo *group
		if c.ReplyTo != "" && len(c.Publish) > 0 {
			var err error
			if replyTo, err = r.group(c.ReplyTo); err != nil {
				return err
			}
		}
		for i, m := range c.Publish {
			rec := record{attempt: 1, external: sub == nil, msg: m}
			if replyTo != nil {
				if err := r.enqueueEncoded(replyTo, rec, vals[i]); err != nil {
					return err
				}
				continue
			}
			for _, g := range b.route(m.Type) {
				if err := r.enqueueEncoded(g, rec, vals[i]); err != nil {
					return err
				}
			}
		}
		if err := r.journal(c.Journal, jvals); err != nil {
			return err
		}
		if dead != nil {
			if err := r.set(seqKey(kindDead, r.nextSeq()), dead); err != nil {
				return err
			}
		}
		if sub != nil {
			return r.settle(sub, rec, c.Retry, c.RetryAfter)
		}
		return nil
	})
	return func(context.Context) error {
		err := <-done
		if sub != nil {
			sub.release(rec.seq, err)
		}
		if err == nil && duplicate {
			return bus.ErrDuplicate
		}
		return err
	}
}

// duplicate settles a delivery whose event the group already handled:
// nothing it would publish is written, and the journal says so.
func (r *round) duplicate(c bus.Commit, id string, rec record) error {
	var corr, typ, subject string
	if len(c.Journal) > 0 {
		corr, typ, subject = c.Journal[0].CorrelationID, c.Journal[0].EventType, c.Journal[0].Subject
	}
	if corr != "" {
		dup := []store.Entry{{
			Time: r.b.now(), CorrelationID: corr, Outcome: store.Duplicate,
			EventID: id, EventType: typ, Subject: subject, Group: c.Group,
		}}
		if err := r.journal(dup, encodeEntries(dup)); err != nil {
			return err
		}
	}
	if c.Delivery == nil {
		return nil
	}
	ref := c.Delivery.Ref.(*inflight)
	return r.settle(ref.sub, rec, false, 0)
}

// settle removes rec from the group's queue and, for a retry, puts it back
// with the next attempt: at the tail now, or in the retry index until due.
func (r *round) settle(sub *subscription, rec record, retry bool, after time.Duration) error {
	g := sub.g
	if err := r.consume(queueKey(g.name, rec.seq)); err != nil {
		return err
	}
	if !retry {
		return nil
	}
	rec.attempt++
	if after <= 0 {
		return r.enqueueTo(g, rec)
	}
	due := r.b.now().Add(after)
	if err := r.set(retryKey(due, g.name, r.nextSeq()), encodeRecord(rec)); err != nil {
		return err
	}
	r.after(r.b.wakeRetries)
	return nil
}

func expired(v []byte, now time.Time) bool {
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < now.UnixNano()
}

func (r *round) markSeen(group, id string) error {
	at := r.b.now().Add(r.b.cfg.InboxRetention)
	k := inboxKey(group, id)
	if err := r.setTracked(k, appendTime(nil, at)); err != nil {
		return err
	}
	return r.set(expiryKey(at, group, id), nil)
}

type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) {}
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error("pebble fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
