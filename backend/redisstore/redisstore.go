package redisstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

var (
	_ store.Store   = (*Store)(nil)
	_ store.Expirer = (*Store)(nil)
	_ store.Outbox  = (*Store)(nil)
	_ store.Settler = (*Store)(nil)
)

// Config configures a Store. The zero value of every field but URL means its
// documented default.
type Config struct {
	URL            string        // redis://[:password@]host:port/db or rediss://...; required
	Prefix         string        // of every key; default "baton:"
	InboxRetention time.Duration // how long inbox marks are kept; default 24h
	Logger         *slog.Logger  // default: discard
	// Retention bounds the journal, the ended runs and the dead letters
	// (zero: store.Retention's defaults); they are swept in the background.
	Retention store.Retention
}

// Store is a store.Store, store.Expirer and store.Outbox on Redis.
type Store struct {
	client *redis.Client
	// rdb sends every command: it gathers the commands that concurrent
	// handlers issue at the same moment into one pipeline, so that a busy
	// runtime pays one round trip (and one system call each side) for many
	// of them; a lone command goes at once.
	rdb *redis.AutoPipeliner
	cfg Config
	k   keys

	// done closes on Close; settles are the Settles waiting for the
	// settler, seens the Seens waiting for the inbox reader: the
	// goroutines of bg.
	done      chan struct{}
	settles   chan *settleReq
	seens     chan *seenReq
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	sweeps    *store.Sweeps
}

// keys are the fixed key names, and the prefixes of the others.
type keys struct {
	inbox, inboxExpiry, inboxBuckets     string
	journalSeq, journal, journalCorr     string
	deadSeq, dead, deadIDs               string
	run, runKeys                         string
	runsCreated, runsFlow, runsStatus    string
	runsKey, runsWake                    string
	outbox, schedules, schedulesRevision string
}

func newKeys(p string) keys {
	return keys{
		inbox: p + "inbox:", inboxExpiry: p + "inbox:expiry", inboxBuckets: p + "inbox:buckets",
		journalSeq: p + "journal:seq", journal: p + "journal", journalCorr: p + "journal:corr:",
		deadSeq: p + "dead:seq", dead: p + "dead", deadIDs: p + "dead:ids",
		run: p + "run:", runKeys: p + "runs:keys",
		runsCreated: p + "runs:created", runsFlow: p + "runs:flow:", runsStatus: p + "runs:status:",
		runsKey: p + "runs:key:", runsWake: p + "runs:wake",
		outbox: p + "outbox", schedules: p + "schedules", schedulesRevision: p + "schedules:rev",
	}
}

const (
	defaultPoolSize  = 128
	defaultPrefix    = "baton:"
	defaultRetention = 24 * time.Hour
)

// Open connects to the Redis server at cfg.URL and checks that it answers.
// Until Close, a settler gathers concurrent Settles into one script call,
// an inbox reader concurrent Seens into one MGET, and a sweeper applies
// cfg.Retention at once and every store.SweepEvery.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, baton.Errorf(baton.Invalid, "redisstore open", "no Redis URL given (e.g. redis://127.0.0.1:6379/0)")
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, baton.Errorf(baton.Invalid, "redisstore open", "Redis URL: %w", err)
	}
	if opt.PoolSize == 0 {
		// go-redis's default, 10 per CPU, is fewer than the handlers a
		// runtime runs at once (32 per group): they would queue for a
		// connection. A pool_size in the URL wins.
		opt.PoolSize = max(defaultPoolSize, 10*runtime.GOMAXPROCS(0))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if cfg.InboxRetention <= 0 {
		cfg.InboxRetention = defaultRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Retention = cfg.Retention.WithDefaults()
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, baton.Errorf(baton.Unavailable, "redisstore open", "cannot reach Redis at %s: %w", opt.Addr, err)
	}
	cfg.Logger.Debug("redisstore: connected", "addr", opt.Addr, "db", opt.DB, "prefix", cfg.Prefix)
	ap, err := rdb.AutoPipeline()
	if err != nil {
		rdb.Close()
		return nil, baton.Errorf(baton.Internal, "redisstore open", "start the pipeliner: %w", err)
	}
	s := &Store{client: rdb, rdb: ap, cfg: cfg, k: newKeys(cfg.Prefix),
		done: make(chan struct{}), settles: make(chan *settleReq, maxSettleBatch),
		seens: make(chan *seenReq, maxSeenBatch)}
	s.sweeps = store.NewSweeps("redisstore", cfg.Logger, s.cfg.Retention, store.SweepSteps{
		Journal: s.sweepJournal, Runs: s.sweepRuns, DeadBefore: s.sweepDeadBefore, DeadOverCap: s.sweepDeadOverCap})
	s.bg.Add(3)
	go s.settle()
	go s.readInbox()
	go func() {
		defer s.bg.Done()
		s.sweeps.Run(s.done, s.closing)
	}()
	return s, nil
}

// Close stops the settler and the inbox reader, after the call each has in
// flight (the Settles and Seens waiting return at once), then closes the
// connections. Closing twice is not an error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.bg.Wait()
		s.closeErr = s.client.Close()
	})
	return s.closeErr
}

// fail translates a driver error into Baton's coded error: a server that is
// away, loading, read-only or out of memory is Unavailable; any other error
// reply is Internal (a bug or a key of the wrong type).
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var be *baton.Error
	if errors.As(err, &be) {
		return err
	}
	code := baton.Unavailable
	var re redis.Error
	if errors.As(err, &re) && !transient(re.Error()) {
		code = baton.Internal
	}
	return &baton.Error{Code: code, Op: "redis " + op, Err: err}
}

func transient(reply string) bool {
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "OOM", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "ERR max number of clients"} {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}

func notFound(op, what string) error {
	return &baton.Error{Code: baton.NotFound, Op: op, Err: errors.New("no such " + what)}
}

// corrupt is a stored value that does not decode.
func corrupt(op string, err error) error {
	return &baton.Error{Code: baton.Internal, Op: "redis " + op, Err: err}
}

// lenPrefixed joins two strings so that no two pairs give the same result.
func lenPrefixed(a, b string) string {
	return strconv.Itoa(len(a)) + ":" + a + ":" + b
}

const hexDigits = "0123456789abcdef"

// lexTime is a fixed-width encoding of t whose byte order is time order.
func lexTime(t time.Time) string {
	u := uint64(t.UnixNano()) ^ (1 << 63)
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[u&0xf]
		u >>= 4
	}
	return string(b[:])
}

// member is an entry of a time index: the time, then the id.
func member(t time.Time, id string) string { return lexTime(t) + ":" + id }

// strs converts a script's array reply.
func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, len(a))
	for i, x := range a {
		switch x := x.(type) {
		case string:
			out[i] = x
		case int64:
			out[i] = strconv.FormatInt(x, 10)
		}
	}
	return out
}
