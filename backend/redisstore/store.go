package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/batch"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// The inbox: one key per mark, with a TTL, so Redis expires marks by itself;
// a sorted set of the marks by expiry lets ExpireInbox honour an explicit
// time, and MarkSeen trims the entries of marks that have expired.

func (s *Store) inboxMember(group, id string) string { return lenPrefixed(group, id) }

// seenReq is one Seen waiting for the inbox reader.
type seenReq struct {
	key  string
	seen bool // set by the reader before done
	done chan error
}

// maxSeenBatch bounds the marks one MGET of the inbox reader asks for.
const maxSeenBatch = 128

// Seen reports whether group handled id within the retention window.
// Concurrent Seens of one process are answered together by one reader: a
// Seen that finds it idle is sent at once, and those that arrive while a
// lookup is in flight are gathered into the next, one MGET for all.
func (s *Store) Seen(ctx context.Context, group, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fail("inbox", err)
	}
	req := &seenReq{key: s.k.inbox + s.inboxMember(group, id), done: make(chan error, 1)}
	select {
	case s.seens <- req:
	case <-s.done:
		return false, fail("inbox", redis.ErrClosed)
	case <-ctx.Done():
		return false, fail("inbox", ctx.Err())
	}
	select {
	case err := <-req.done:
		return req.seen, err
	case <-s.done:
		return false, fail("inbox", redis.ErrClosed)
	case <-ctx.Done():
		return false, fail("inbox", ctx.Err())
	}
}

// readInbox is the inbox reader: it answers the Seens waiting, several at
// a time, until Close.
func (s *Store) readInbox() {
	defer s.bg.Done()
	var keys []string
	batch.Serve(s.done, s.seens, maxSeenBatch, nil, func(b []*seenReq) {
		keys = keys[:0]
		for _, req := range b {
			keys = append(keys, req.key)
		}
		// Not the context of one caller: the lookup answers all of them.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		vs, err := s.rdb.MGet(ctx, keys...).Result()
		cancel()
		err = fail("inbox", err)
		for i, req := range b {
			req.seen = err == nil && i < len(vs) && vs[i] != nil
			req.done <- err
		}
	})
}

// markSeenLua marks KEYS[1] for ARGV[1] ms and indexes it in KEYS[2] by
// expiry (ARGV[2], member ARGV[3]), trimming marks expired by ARGV[4].
const markSeenLua = `
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
`

var markSeenScript = redis.NewScript(markSeenLua + `return 1`)

// MarkSeen records that group handled id, for the retention window from
// now; marking again extends it.
func (s *Store) MarkSeen(ctx context.Context, group, id string) error {
	m := s.inboxMember(group, id)
	now := time.Now()
	ttl := s.cfg.InboxRetention.Milliseconds()
	err := markSeenScript.Run(ctx, s.rdb, []string{s.k.inbox + m, s.k.inboxExpiry},
		ttl, now.UnixMilli()+ttl, m, now.UnixMilli()).Err()
	return fail("inbox", err)
}

// Forget removes a mark.
func (s *Store) Forget(ctx context.Context, group, id string) error {
	m := s.inboxMember(group, id)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.k.inbox+m)
		p.ZRem(ctx, s.k.inboxExpiry, m)
		return nil
	})
	return fail("inbox", err)
}

// InboxRetention is how long marks are kept.
func (s *Store) InboxRetention() time.Duration { return s.cfg.InboxRetention }

var expireInboxScript = redis.NewScript(`
local ms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local n = 0
for _, m in ipairs(ms) do
  n = n + redis.call('DEL', ARGV[3] .. m)
end
if #ms > 0 then redis.call('ZREM', KEYS[1], unpack(ms)) end
return {n, #ms}`)

const expireBatch = 1000

// ExpireInbox removes the marks whose window ended by now and returns how
// many it removed. Redis expires marks by itself (they have a TTL); this
// makes the window testable with an explicit clock, and counts.
func (s *Store) ExpireInbox(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		v, err := expireInboxScript.Run(ctx, s.rdb, []string{s.k.inboxExpiry}, now.UnixMilli(), expireBatch, s.k.inbox).Int64Slice()
		if err != nil {
			return total, fail("expire inbox", err)
		}
		total += int(v[0])
		if v[1] < expireBatch {
			return total, nil
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// The journal: a counter for Seq, a stream of the entries whose ids are
// "Seq-0" (so Since is one XRANGE), and a list of Seq per correlation id.

// appendLua appends journal entries: KEYS[k] is the counter and KEYS[k+1]
// the stream; ARGV[a] the prefix of the per-correlation lists, and the
// (correlation id, entry) pairs follow it. It returns the entries' Seqs.
func appendLua(k, a int) string {
	return fmt.Sprintf(`
local seqs = {}
for i = %[2]d + 1, #ARGV, 2 do
  local seq = redis.call('INCR', KEYS[%[1]d])
  redis.call('XADD', KEYS[%[1]d + 1], seq .. '-0', 'e', ARGV[i+1])
  if ARGV[i] ~= '' then redis.call('RPUSH', ARGV[%[2]d] .. ARGV[i], seq) end
  seqs[#seqs+1] = seq
end
return seqs`, k, a)
}

var appendScript = redis.NewScript(appendLua(1, 1))

var historyScript = redis.NewScript(`
local seqs = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
for _, q in ipairs(seqs) do
  local e = redis.call('XRANGE', KEYS[2], q, q)
  if e[1] then
    out[#out+1] = q
    out[#out+1] = e[1][2][2]
  end
end
return out`)

// Append records journal entries, assigning their Seq; the entries of one
// call are numbered in order and nothing comes between them.
func (s *Store) Append(ctx context.Context, entries ...store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	args := s.appendArgs(entries)
	seqs, err := appendScript.Run(ctx, s.rdb, []string{s.k.journalSeq, s.k.journal}, args...).Int64Slice()
	if err != nil {
		return fail("journal", err)
	}
	setSeqs(entries, seqs)
	return nil
}

// appendArgs are the arguments of appendLua after those given: the prefix
// of the per-correlation lists, then each entry's correlation id and
// encoding (store.AppendEntry), all in one buffer.
func (s *Store) appendArgs(entries []store.Entry, before ...any) []any {
	args := append(before, s.k.journalCorr)
	n := 0
	for i := range entries {
		n += store.EntrySize(&entries[i])
	}
	buf := make([]byte, 0, n)
	for i := range entries {
		start := len(buf)
		buf = store.AppendEntry(buf, &entries[i])
		args = append(args, entries[i].CorrelationID, buf[start:len(buf):len(buf)])
	}
	return args
}

func setSeqs(entries []store.Entry, seqs []int64) {
	for i := range entries {
		if i < len(seqs) {
			entries[i].Seq = uint64(seqs[i])
		}
	}
}

// decodeEntry reads an entry of the journal stream: binary, or JSON as
// entries were written before.
func decodeEntry(seq uint64, v string) (store.Entry, error) {
	e, err := store.ParseEntry(seq, []byte(v))
	if err != nil {
		return e, corrupt("journal", err)
	}
	return e, nil
}

// History returns one correlation id's entries in order.
func (s *Store) History(ctx context.Context, correlationID string) ([]store.Entry, error) {
	v, err := historyScript.Run(ctx, s.rdb, []string{s.k.journalCorr + correlationID, s.k.journal}).Result()
	if err != nil {
		return nil, fail("journal", err)
	}
	a := strs(v)
	out := make([]store.Entry, 0, len(a)/2)
	for i := 0; i+1 < len(a); i += 2 {
		seq, err := strconv.ParseUint(a[i], 10, 64)
		if err != nil {
			return nil, corrupt("journal", err)
		}
		e, err := decodeEntry(seq, a[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Since returns up to limit entries with Seq > after, in order.
func (s *Store) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	msgs, err := s.rdb.XRangeN(ctx, s.k.journal, strconv.FormatUint(after+1, 10), "+", int64(limit)).Result()
	if err != nil {
		return nil, fail("journal", err)
	}
	out := make([]store.Entry, 0, len(msgs))
	for _, m := range msgs {
		seq, err := strconv.ParseUint(strings.TrimSuffix(m.ID, "-0"), 10, 64)
		if err != nil {
			return nil, corrupt("journal", err)
		}
		v, _ := m.Values["e"].(string)
		e, err := decodeEntry(seq, v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Dead letters: a counter for ids, a hash of the letters and a sorted set of
// their ids, for listing in order.

var addDeadScript = redis.NewScript(`
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
redis.call('ZADD', KEYS[3], id, id)
return id`)

var listDeadScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HGET', KEYS[1], id)
  if v then
    out[#out+1] = id
    out[#out+1] = v
  end
end
return out`)

// AddDead stores a dead letter under a new id.
func (s *Store) AddDead(ctx context.Context, d store.DeadLetter) error {
	d.ID = ""
	if d.Time.IsZero() {
		d.Time = time.Now().UTC()
	}
	s.cfg.Retention.Bound(&d)
	v, err := json.Marshal(d)
	if err != nil {
		return baton.Errorf(baton.Invalid, "dead letter", "encode: %w", err)
	}
	err = addDeadScript.Run(ctx, s.rdb, []string{s.k.deadSeq, s.k.dead, s.k.deadIDs}, v).Err()
	return fail("dead letters", err)
}

func deadID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, baton.Errorf(baton.NotFound, "dead letter "+id, "no such dead letter (ids are numbers; see baton dlq list)")
	}
	return n, nil
}

func decodeDead(id, v string) (store.DeadLetter, error) {
	var d store.DeadLetter
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		return d, corrupt("dead letters", err)
	}
	d.ID = id
	return d, nil
}

// Dead returns one dead letter.
func (s *Store) Dead(ctx context.Context, id string) (store.DeadLetter, error) {
	if _, err := deadID(id); err != nil {
		return store.DeadLetter{}, err
	}
	v, err := s.rdb.HGet(ctx, s.k.dead, id).Result()
	if err == redis.Nil {
		return store.DeadLetter{}, notFound("dead letter "+id, "dead letter")
	}
	if err != nil {
		return store.DeadLetter{}, fail("dead letters", err)
	}
	return decodeDead(id, v)
}

// ListDead returns up to limit dead letters after the id after, oldest
// first.
func (s *Store) ListDead(ctx context.Context, after string, limit int) ([]store.DeadLetter, error) {
	from := "-inf"
	if after != "" {
		n, err := deadID(after)
		if err != nil {
			return nil, err
		}
		from = "(" + strconv.FormatUint(n, 10)
	}
	if limit <= 0 {
		return nil, nil
	}
	v, err := listDeadScript.Run(ctx, s.rdb, []string{s.k.dead, s.k.deadIDs}, from, limit).Result()
	if err != nil {
		return nil, fail("dead letters", err)
	}
	a := strs(v)
	out := make([]store.DeadLetter, 0, len(a)/2)
	for i := 0; i+1 < len(a); i += 2 {
		d, err := decodeDead(a[i], a[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// DropDead deletes one dead letter.
func (s *Store) DropDead(ctx context.Context, id string) error {
	if _, err := deadID(id); err != nil {
		return err
	}
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, s.k.dead, id)
		p.ZRem(ctx, s.k.deadIDs, id)
		return nil
	})
	if err != nil {
		return fail("dead letters", err)
	}
	if del.Val() == 0 {
		return notFound("dead letter "+id, "dead letter")
	}
	return nil
}
