package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/batch"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// settleReq is one Settle waiting for the settler.
type settleReq struct {
	member string // of the inbox mark
	args   []any  // its record's (recordArgs)
	n      int    // entries in the record
	last   int64  // the Seq of the record's last entry, once written
	done   chan error
}

// maxSettleBatch bounds the Settles one script call of the settler writes.
const maxSettleBatch = 128

// settleManyScript marks several Settles' events handled and journals each
// Settle's entries as one record (see appendLua): KEYS are the expiry
// index, the journal counter, the journal, then each Settle's inbox mark;
// ARGV the retention (ms), the marks' expiry, the time before which expired
// marks are trimmed, the prefix of the per-correlation lists, the number of
// entries in all, then per Settle its index member and its record's
// arguments (recordArgs). The reply is each Settle's last Seq (0 for a
// Settle without entries).
var settleManyScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local total = tonumber(ARGV[5])
local seq = 0
if total > 0 then seq = redis.call('INCRBY', KEYS[2], total) - total end
local lasts, members = {}, {}
local a = 6
for r = 4, #KEYS do
  redis.call('SET', KEYS[r], '1', 'PX', ARGV[1])
  members[#members+1] = ARGV[2]
  members[#members+1] = ARGV[a]
  local n, c = tonumber(ARGV[a+1]), tonumber(ARGV[a+4])
  if n > 0 then
    seq = seq + n
    redis.call('XADD', KEYS[3], seq .. '-0', ARGV[a+2], ARGV[a+3])
    for i = a + 5, a + 4 + c do redis.call('RPUSH', ARGV[4] .. ARGV[i], seq) end
    lasts[#lasts+1] = seq
  else
    lasts[#lasts+1] = 0
  end
  a = a + 5 + c
end
redis.call('ZADD', KEYS[1], unpack(members))
return lasts`)

// Settle marks id handled by group and appends entries. Concurrent Settles
// of one process are written together by one settler: a Settle that finds
// it idle is sent at once, and those that arrive while a script call is in
// flight are gathered into the next, one call for all of them.
func (s *Store) Settle(ctx context.Context, group, id string, entries ...store.Entry) error {
	if err := ctx.Err(); err != nil {
		return fail("settle", err)
	}
	req := &settleReq{member: s.inboxMember(group, id), n: len(entries), done: make(chan error, 1)}
	if len(entries) > 0 {
		req.args = s.recordArgs(entries)
	} else {
		req.args = []any{0, "", "", 0}
	}
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
			setSeqs(entries, req.last)
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

// settleBatch runs settleManyScript for batch and sets each request's seqs.
func (s *Store) settleBatch(batch []*settleReq) error {
	keys := make([]string, 3, 3+len(batch))
	keys[0], keys[1], keys[2] = s.k.inboxExpiry, s.k.journalSeq, s.k.journal
	now := time.Now().UnixMilli()
	ttl := s.cfg.InboxRetention.Milliseconds()
	n, entries := 5, 0
	for _, req := range batch {
		n += 1 + len(req.args)
		entries += req.n
	}
	args := make([]any, 0, n)
	args = append(args, ttl, now+ttl, now, s.k.journalCorr, entries)
	for _, req := range batch {
		keys = append(keys, s.k.inbox+req.member)
		args = append(args, req.member)
		args = append(args, req.args...)
	}
	// Not the context of one caller: the call writes for all of them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lasts, err := settleManyScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return fail("settle", err)
	}
	if len(lasts) != len(batch) {
		return fail("settle", fmt.Errorf("the script gave %d Seqs for %d settlements", len(lasts), len(batch)))
	}
	for i, req := range batch {
		req.last = lasts[i]
	}
	return nil
}
