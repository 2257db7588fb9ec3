package redisstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/batch"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// The inbox: one key per mark, with a TTL, so Redis expires marks by itself;
// a sorted set by expiry lets ExpireInbox honour an explicit time, and
// MarkSeen and the settler trim what has expired from it. Its members are
// the marks MarkSeen made, and buckets: the marks of one call of the
// settler, listed under "inbox:b:N" (one member, one list, for some fifteen
// marks under load, where a member per mark cost Redis more than the marks).

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
// its expiry on Redis's clock (member ARGV[3]; see expireInboxScript),
// trimming what expired by ARGV[4]. (ARGV[2] is unused.)
const markSeenLua = `
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1]), ARGV[3])
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

// expireInboxScript removes up to ARGV[2] members of the expiry index
// KEYS[1] scored by ARGV[1] at most, and their marks (ARGV[3] is the
// inbox's prefix): a mark's own, or each of a bucket's. A mark made again
// since it was indexed expires later than its member's score (by more than
// a second: the margin for the clocks and rounding): a later member owns
// it, and it stays. It returns how many marks it removed and how many
// members.
var expireInboxScript = redis.NewScript(`
local ms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n, gone = 0, {}
local function expire(key, score)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 or (ttl >= 0 and now + ttl <= score + 1000) then
    n = n + redis.call('DEL', key)
  end
end
for i = 1, #ms, 2 do
  local m, score = ms[i], tonumber(ms[i+1])
  gone[#gone+1] = m
  if string.sub(m, 1, 2) == 'b:' then
    for _, mark in ipairs(redis.call('LRANGE', ARGV[3] .. m, 0, -1)) do
      expire(ARGV[3] .. mark, score)
    end
    redis.call('DEL', ARGV[3] .. m)
  else
    expire(ARGV[3] .. m, score)
  end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
return {n, #gone}`)

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

// The journal: a counter for Seq, a stream of records, and a list per
// correlation id of the records that hold its entries. A record holds the
// entries of one write (an Append, or the Settles of one call of the
// settler), numbered consecutively; its id is "Seq-0" with the Seq of its
// last entry, so that Since is one XRANGE from the Seq after the last one
// read, whose first record may begin before it. A record of one entry
// keeps it in the field "e", as every record was written before records
// held several (their lists hold each entry's Seq, which is its record's
// id); a record of several keeps them in "es" (see appendEntries). The
// journal is written on every settlement, several entries at a time: one
// XADD per write and one RPUSH per correlation id in it, instead of one of
// each per entry, saves most of what Redis spent on it.

// appendLua appends one record: KEYS[k] is the counter and KEYS[k+1] the
// stream; ARGV[a] the prefix of the per-correlation lists, then the
// record's arguments (recordArgs): its number of entries, field, value,
// the number of its correlation ids and those. It returns the Seq of the
// record's last entry.
func appendLua(k, a int) string {
	return fmt.Sprintf(`
local n = tonumber(ARGV[%[2]d + 1])
local seq = redis.call('INCRBY', KEYS[%[1]d], n)
redis.call('XADD', KEYS[%[1]d + 1], seq .. '-0', ARGV[%[2]d + 2], ARGV[%[2]d + 3])
for i = %[2]d + 5, %[2]d + 4 + tonumber(ARGV[%[2]d + 4]) do
  redis.call('RPUSH', ARGV[%[2]d] .. ARGV[i], seq)
end
return seq`, k, a)
}

var appendScript = redis.NewScript(appendLua(1, 1))

// historyScript returns, for each record in a correlation's list, its last
// Seq, its field and its value.
var historyScript = redis.NewScript(`
local seqs = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
for _, q in ipairs(seqs) do
  local e = redis.call('XRANGE', KEYS[2], q, q)
  if e[1] then
    out[#out+1] = q
    out[#out+1] = e[1][2][1]
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
	args := s.recordArgs(entries, s.k.journalCorr)
	last, err := appendScript.Run(ctx, s.rdb, []string{s.k.journalSeq, s.k.journal}, args...).Int64()
	if err != nil {
		return fail("journal", err)
	}
	setSeqs(entries, last)
	return nil
}

// recordArgs appends to before the arguments that write entries as one
// record: their number, the record's field and value (appendRecord), the
// number of distinct non-empty correlation ids among them, and those.
func (s *Store) recordArgs(entries []store.Entry, before ...any) []any {
	field, value := appendRecord(entries)
	args := append(before, len(entries), field, value, 0)
	count := len(args) - 1
	args = appendCorrelations(args, entries, nil)
	args[count] = len(args) - count - 1
	return args
}

// appendCorrelations appends to args the distinct non-empty correlation ids
// of entries that are not in seen (nil: none), and adds them to seen.
func appendCorrelations(args []any, entries []store.Entry, seen map[string]bool) []any {
	for i := range entries {
		c := entries[i].CorrelationID
		if c == "" || seen[c] || seen == nil && slices.ContainsFunc(entries[:i], func(e store.Entry) bool { return e.CorrelationID == c }) {
			continue
		}
		if seen != nil {
			seen[c] = true
		}
		args = append(args, c)
	}
	return args
}

// appendRecord encodes entries as one record's field and value: one entry
// as "e" and its encoding (store.AppendEntry), several as "es" and
// appendEntries's.
func appendRecord(entries []store.Entry) (field string, value []byte) {
	if len(entries) == 1 {
		return "e", store.AppendEntry(make([]byte, 0, store.EntrySize(&entries[0])), &entries[0])
	}
	return "es", appendEntries(nil, entries)
}

// appendEntries appends to b each entry's length (a uvarint) and encoding,
// one after another: the value of a record's "es", which may be the
// concatenation of several such runs.
func appendEntries(b []byte, entries []store.Entry) []byte {
	n, most := len(b), 0
	for i := range entries {
		size := store.EntrySize(&entries[i])
		n, most = n+binary.MaxVarintLen32+size, max(most, size)
	}
	// Each entry is encoded in one (EntrySize bounds its size), then
	// copied after its length.
	buf := make([]byte, len(b), n+most)
	copy(buf, b)
	one := buf[n : n : n+most]
	buf = buf[:len(b):n]
	for i := range entries {
		one = store.AppendEntry(one[:0], &entries[i])
		buf = binary.AppendUvarint(buf, uint64(len(one)))
		buf = append(buf, one...)
	}
	return buf
}

// setSeqs numbers entries, written as one record, up to last.
func setSeqs(entries []store.Entry, last int64) {
	first := uint64(last) - uint64(len(entries)) + 1
	for i := range entries {
		entries[i].Seq = first + uint64(i)
	}
}

// decodeRecord reads the entries of the journal record whose last Seq is
// last, from its field and value: one entry, binary or JSON as entries
// were written before, under "e"; several under "es".
func decodeRecord(last uint64, field, v string) ([]store.Entry, error) {
	if field != "es" {
		e, err := store.ParseEntry(last, []byte(v))
		if err != nil {
			return nil, corrupt("journal", err)
		}
		return []store.Entry{e}, nil
	}
	var out []store.Entry
	b := []byte(v)
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, corrupt("journal", fmt.Errorf("record %d: a truncated entry", last))
		}
		e, err := store.ParseEntry(0, b[k:k+int(n)])
		if err != nil {
			return nil, corrupt("journal", err)
		}
		out = append(out, e)
		b = b[k+int(n):]
	}
	if uint64(len(out)) > last {
		return nil, corrupt("journal", fmt.Errorf("record %d holds %d entries", last, len(out)))
	}
	first := last - uint64(len(out)) + 1
	for i := range out {
		out[i].Seq = first + uint64(i)
	}
	return out, nil
}

// recordOf reads a record from a stream message.
func recordOf(m redis.XMessage) ([]store.Entry, error) {
	last, err := strconv.ParseUint(strings.TrimSuffix(m.ID, "-0"), 10, 64)
	if err != nil {
		return nil, corrupt("journal", err)
	}
	if v, ok := m.Values["es"].(string); ok {
		return decodeRecord(last, "es", v)
	}
	v, _ := m.Values["e"].(string)
	return decodeRecord(last, "e", v)
}

// History returns one correlation id's entries in order.
func (s *Store) History(ctx context.Context, correlationID string) ([]store.Entry, error) {
	v, err := historyScript.Run(ctx, s.rdb, []string{s.k.journalCorr + correlationID, s.k.journal}).Result()
	if err != nil {
		return nil, fail("journal", err)
	}
	a := strs(v)
	out := make([]store.Entry, 0, len(a)/3)
	for i := 0; i+2 < len(a); i += 3 {
		last, err := strconv.ParseUint(a[i], 10, 64)
		if err != nil {
			return nil, corrupt("journal", err)
		}
		es, err := decodeRecord(last, a[i+1], a[i+2])
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			// A record of several holds the entries of one write,
			// whatever their correlation ids.
			if len(es) == 1 || e.CorrelationID == correlationID {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Since returns up to limit entries with Seq > after, in order.
func (s *Store) Since(ctx context.Context, after uint64, limit int) ([]store.Entry, error) {
	if limit <= 0 {
		return nil, nil
	}
	// The first record may hold entries up to after too; each holds one at
	// least, so limit records hold limit entries past after.
	msgs, err := s.rdb.XRangeN(ctx, s.k.journal, strconv.FormatUint(after+1, 10), "+", int64(limit)).Result()
	if err != nil {
		return nil, fail("journal", err)
	}
	out := make([]store.Entry, 0, len(msgs))
	for _, m := range msgs {
		es, err := recordOf(m)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.Seq > after && len(out) < limit {
				out = append(out, e)
			}
		}
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
