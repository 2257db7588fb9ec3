package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/batonhq/baton/internal/batch"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// settleReq is one Settle waiting for the settler.
type settleReq struct {
	member string // of the inbox mark
	args   []any  // each entry's correlation id and encoding
	seqs   []int64
	done   chan error
}

// maxSettleBatch bounds the Settles one script call of the settler writes.
const maxSettleBatch = 128

// settleManyScript is settleScript for several Settles at once: KEYS are
// the expiry index, the journal counter, the journal, then each Settle's
// inbox mark; ARGV the retention (ms), the marks' expiry, the time before
// which expired marks are trimmed, the prefix of the per-correlation lists,
// the number of entries in all, then per Settle its index member, its number of entries and their
// (correlation id, entry) pairs. Each Settle's entries are numbered
// consecutively, in order; the reply is every Seq, Settle after Settle.
var settleManyScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local total = tonumber(ARGV[5])
local seq = 0
if total > 0 then seq = redis.call('INCRBY', KEYS[2], total) - total end
local seqs, members = {}, {}
local a = 6
for r = 4, #KEYS do
  redis.call('SET', KEYS[r], '1', 'PX', ARGV[1])
  members[#members+1] = ARGV[2]
  members[#members+1] = ARGV[a]
  local last = a + 1 + 2 * tonumber(ARGV[a+1])
  for i = a + 2, last, 2 do
    seq = seq + 1
    redis.call('XADD', KEYS[3], seq .. '-0', 'e', ARGV[i+1])
    if ARGV[i] ~= '' then redis.call('RPUSH', ARGV[4] .. ARGV[i], seq) end
    seqs[#seqs+1] = seq
  end
  a = last + 1
end
redis.call('ZADD', KEYS[1], unpack(members))
return seqs`)

// Settle marks id handled by group and appends entries. Concurrent Settles
// of one process are written together by one settler: a Settle that finds
// it idle is sent at once, and those that arrive while a script call is in
// flight are gathered into the next, one call for all of them.
func (s *Store) Settle(ctx context.Context, group, id string, entries ...store.Entry) error {
	if err := ctx.Err(); err != nil {
		return fail("settle", err)
	}
	args := s.appendArgs(entries)
	req := &settleReq{member: s.inboxMember(group, id), args: args[1:], done: make(chan error, 1)}
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
		setSeqs(entries, req.seqs)
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
		n += 2 + len(req.args)
		entries += len(req.args) / 2
	}
	args := make([]any, 0, n)
	args = append(args, ttl, now+ttl, now, s.k.journalCorr, entries)
	for _, req := range batch {
		keys = append(keys, s.k.inbox+req.member)
		args = append(args, req.member, strconv.Itoa(len(req.args)/2))
		args = append(args, req.args...)
	}
	// Not the context of one caller: the call writes for all of them.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seqs, err := settleManyScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return fail("settle", err)
	}
	for _, req := range batch {
		k := min(len(req.args)/2, len(seqs))
		req.seqs, seqs = seqs[:k], seqs[k:]
	}
	return nil
}
