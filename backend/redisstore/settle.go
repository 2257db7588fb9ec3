package redisstore

import (
	"context"
	"time"

	"github.com/batonhq/baton/internal/batch"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// settleReq is one Settle waiting for the settler.
type settleReq struct {
	member  string        // of the inbox mark
	entries []store.Entry // for their correlation ids
	body    []byte        // the entries' encoding (appendEntries)
	first   int64         // the Seq of the first entry, once written
	done    chan error
}

// maxSettleBatch bounds the Settles one script call of the settler writes.
const maxSettleBatch = 128

// settleManyScript marks several Settles' events handled and journals all
// their entries as one record (see appendLua): KEYS are the expiry index,
// the journal counter, the journal, the counter of the index's buckets,
// then each Settle's inbox mark; ARGV the retention (ms), the prefix of the
// inbox's keys, the time before which expired buckets are trimmed from the
// index, the prefix of the per-correlation lists, the number of entries,
// the record's value ("es"), the number of distinct correlation ids and
// those, then each Settle's mark (its key without the prefix). The marks
// of one call share one bucket of the expiry index (see expireInboxScript):
// a list of them, expiring with them, and one member of the index, scored
// by their expiry on Redis's clock. The reply is the Seq of the record's
// last entry (0 for no entries).
var settleManyScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local m = 8 + tonumber(ARGV[7])
local marks = {}
for r = 5, #KEYS do
  redis.call('SET', KEYS[r], '1', 'PX', ARGV[1])
  marks[#marks+1] = ARGV[m + r - 5]
end
if #marks > 0 then
  local t = redis.call('TIME')
  local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
  local b = 'b:' .. redis.call('INCR', KEYS[4])
  redis.call('RPUSH', ARGV[2] .. b, unpack(marks))
  redis.call('PEXPIREAT', ARGV[2] .. b, expiry + 60000)
  redis.call('ZADD', KEYS[1], expiry, b)
end
local n = tonumber(ARGV[5])
if n == 0 then return 0 end
local seq = redis.call('INCRBY', KEYS[2], n)
redis.call('XADD', KEYS[3], seq .. '-0', 'es', ARGV[6])
for i = 8, m - 1 do redis.call('RPUSH', ARGV[4] .. ARGV[i], seq) end
return seq`)

// Settle marks id handled by group and appends entries. Concurrent Settles
// of one process are written together by one settler: a Settle that finds
// it idle is sent at once, and those that arrive while a script call is in
// flight are gathered into the next, one call for all of them.
func (s *Store) Settle(ctx context.Context, group, id string, entries ...store.Entry) error {
	if err := ctx.Err(); err != nil {
		return fail("settle", err)
	}
	req := &settleReq{member: s.inboxMember(group, id), entries: entries, body: appendEntries(nil, entries), done: make(chan error, 1)}
	select {
	case s.settles <- req:
	case <-s.done:
		return fail("settle", redis.ErrClosed)
	case <-ctx.Done():
		return fail("settle", ctx.Err())
	}
	select {
	case err := <-req.done:
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			setSeqs(entries, req.first+int64(len(entries))-1)
		}
		return nil
	case <-s.done:
		return fail("settle", redis.ErrClosed)
	case <-ctx.Done():
		// The mark and the entries may still be written.
		return fail("settle", ctx.Err())
	}
}

// settle is the settler: it writes what the Settles waiting hand it,
// several at a time, until Close.
func (s *Store) settle() {
	defer s.bg.Done()
	batch.Serve(s.done, s.settles, maxSettleBatch, nil, func(b []*settleReq) {
		err := s.settleBatch(b)
		for _, req := range b {
			req.done <- err
		}
	})
}

// settleBatch runs settleManyScript for batch, which journals the entries
// of all its Settles as one record, and sets each request's first Seq.
// (The settler reads a request's entries while its Settle waits, or after
// it gave up waiting: the runtime does not change a commit's entries.)
func (s *Store) settleBatch(batch []*settleReq) error {
	keys := make([]string, 4, 4+len(batch))
	keys[0], keys[1], keys[2], keys[3] = s.k.inboxExpiry, s.k.journalSeq, s.k.journal, s.k.inboxBuckets
	now := time.Now().UnixMilli()
	ttl := s.cfg.InboxRetention.Milliseconds()
	entries, size := 0, 0
	for _, req := range batch {
		entries += len(req.entries)
		size += len(req.body)
	}
	body := make([]byte, 0, size)
	seen := make(map[string]bool, len(batch))
	args := make([]any, 0, 8+2*len(batch))
	args = append(args, ttl, s.k.inbox, now, s.k.journalCorr, entries, nil, 0)
	for _, req := range batch {
		keys = append(keys, s.k.inbox+req.member)
		body = append(body, req.body...)
		args = appendCorrelations(args, req.entries, seen)
	}
	args[5], args[6] = body, len(args)-7
	for _, req := range batch {
		args = append(args, req.member)
	}
	// Not the context of one caller: the call writes for all of them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	last, err := settleManyScript.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return fail("settle", err)
	}
	seq := last - int64(entries) + 1
	for _, req := range batch {
		req.first = seq
		seq += int64(len(req.entries))
	}
	return nil
}
