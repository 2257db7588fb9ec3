package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

var _ store.Sweeper = (*Store)(nil)

// sweepBatch is how many entries one step of a sweep reads and deletes.
const sweepBatch = 1000

// Retention is the store's, defaults applied.
func (s *Store) Retention() store.Retention { return s.cfg.Retention }

// Swept is what the sweeps removed since Open.
func (s *Store) Swept() store.Swept { return s.sweeps.Total() }

// Sweep removes the journal entries, ended runs and dead letters older than
// the retention at now, and the oldest dead letters beyond the cap. Several
// processes sharing the prefix may sweep at once: each entry is counted by
// the one that deleted it.
func (s *Store) Sweep(ctx context.Context, now time.Time) (store.Swept, error) {
	return s.sweeps.Sweep(ctx, now)
}

// stamped is what a sweep reads of a journal entry or a dead letter; one
// that does not decode has no time, and is old.
type stamped struct {
	Time          time.Time `json:"time"`
	CorrelationID string    `json:"correlationid"`
}

func stampOf(v string) stamped {
	var st stamped
	_ = json.Unmarshal([]byte(v), &st)
	return st
}

// sweepJournal deletes the records of the journal stream, oldest first, up
// to the first that is not old, with their ids in their correlations'
// lists. A record is old when its newest entry is (the entries of one
// write are as old as each other, give or take the write); one that does
// not decode has no time, and is old. Each record is deleted by an XDEL of
// its own, so that a sweep counts the entries of the records it deleted,
// and not those another process's sweep deleted first.
func (s *Store) sweepJournal(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.k.journal, "-", "+", sweepBatch).Result()
		if err != nil {
			return total, fail("sweep journal", err)
		}
		type old struct {
			id    string
			n     int
			corrs []string
		}
		var olds []old
		for _, m := range msgs {
			es, _ := recordOf(m)
			o := old{id: m.ID, n: max(len(es), 1)}
			young := false
			for _, e := range es {
				if !e.Time.Before(cutoff) {
					young = true
				}
				if e.CorrelationID != "" && !slices.Contains(o.corrs, e.CorrelationID) {
					o.corrs = append(o.corrs, e.CorrelationID)
				}
			}
			if young {
				break
			}
			olds = append(olds, o)
		}
		if len(olds) == 0 {
			return total, nil
		}
		dels := make([]*redis.IntCmd, len(olds))
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for i, o := range olds {
				dels[i] = p.XDel(ctx, s.k.journal, o.id)
				for _, c := range o.corrs {
					p.LRem(ctx, s.k.journalCorr+c, 1, strings.TrimSuffix(o.id, "-0"))
				}
			}
			return nil
		})
		if err != nil {
			return total, fail("sweep journal", err)
		}
		for i, o := range olds {
			total += int(dels[i].Val()) * o.n
		}
		if len(olds) < len(msgs) || len(msgs) < sweepBatch {
			return total, nil
		}
	}
}

// dropDead deletes dead letters by id and returns how many there were.
func (s *Store) dropDead(ctx context.Context, ids []string) (int, error) {
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, s.k.dead, ids...)
		members := make([]any, len(ids))
		for i, id := range ids {
			members[i] = id
		}
		p.ZRem(ctx, s.k.deadIDs, members...)
		return nil
	})
	if err != nil {
		return 0, fail("sweep dead letters", err)
	}
	return int(del.Val()), nil
}

func (s *Store) sweepDeadBefore(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		ids, err := s.rdb.ZRange(ctx, s.k.deadIDs, 0, sweepBatch-1).Result()
		if err != nil || len(ids) == 0 {
			return total, fail("sweep dead letters", err)
		}
		vs, err := s.rdb.HMGet(ctx, s.k.dead, ids...).Result()
		if err != nil {
			return total, fail("sweep dead letters", err)
		}
		n := 0
		for _, v := range vs {
			d, _ := v.(string) // a letter dropped meanwhile: nil, old
			if !stampOf(d).Time.Before(cutoff) {
				break
			}
			n++
		}
		if n == 0 {
			return total, nil
		}
		dropped, err := s.dropDead(ctx, ids[:n])
		total += dropped
		if err != nil || n < len(ids) || len(ids) < sweepBatch {
			return total, err
		}
	}
}

func (s *Store) sweepDeadOverCap(ctx context.Context) (int, error) {
	limit := s.cfg.Retention.DeadCap
	if limit < 0 {
		return 0, nil
	}
	total := 0
	for {
		// The oldest beyond the newest limit: sweeps running at once
		// (several processes share the store) drop the same ones, never
		// more, and count only what they removed.
		ids, err := s.rdb.ZRange(ctx, s.k.deadIDs, 0, -int64(limit)-1).Result()
		if err != nil || len(ids) == 0 {
			return total, fail("sweep dead letters", err)
		}
		ids = ids[:min(len(ids), sweepBatch)]
		dropped, err := s.dropDead(ctx, ids)
		total += dropped
		if err != nil || dropped == 0 {
			return total, err
		}
	}
}

// deleteRunScript deletes the run KEYS[1] and its index members if it is
// still at revision ARGV[1] and ended. KEYS[2] is runs:keys, KEYS[3]
// runs:created, KEYS[4] runs:wake; ARGV[2..4] the prefixes of the indexes
// by flow, status and key; ARGV[5] the run's field in runs:keys and ARGV[6]
// its id.
var deleteRunScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'r', 's', 'w', 'm', 'f', 'k')
if not v[1] or v[1] ~= ARGV[1] then return 0 end
if v[2] ~= 'completed' and v[2] ~= 'failed' and v[2] ~= 'cancelled' then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], ARGV[5]) == ARGV[6] then redis.call('HDEL', KEYS[2], ARGV[5]) end
redis.call('ZREM', KEYS[3], v[4])
redis.call('ZREM', ARGV[2] .. v[5], v[4])
redis.call('ZREM', ARGV[3] .. v[2], v[4])
redis.call('ZREM', ARGV[4] .. v[6], v[4])
if v[3] and v[3] ~= '' then redis.call('ZREM', KEYS[4], v[3]) end
return 1`)

// sweepRuns walks the indexes of ended runs by creation time, oldest first,
// up to cutoff (a run cannot have ended before it was created), and deletes
// the runs last updated before cutoff.
func (s *Store) sweepRuns(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for _, status := range []store.RunStatus{store.RunCompleted, store.RunFailed, store.RunCancelled} {
		index := s.k.runsStatus + string(status)
		from := "-"
		for {
			ms, err := s.rdb.ZRangeByLex(ctx, index, &redis.ZRangeBy{Min: from, Max: "(" + lexTime(cutoff), Count: sweepBatch}).Result()
			if err != nil {
				return total, fail("sweep runs", err)
			}
			for _, m := range ms {
				n, err := s.sweepRun(ctx, m[17:], cutoff)
				total += n
				if err != nil {
					return total, err
				}
			}
			if len(ms) < sweepBatch {
				break
			}
			from = "(" + ms[len(ms)-1]
		}
	}
	return total, nil
}

// sweepRun deletes the run id if it ended before cutoff, and says whether
// it did (1) or not (0).
func (s *Store) sweepRun(ctx context.Context, id string, cutoff time.Time) (int, error) {
	v, err := s.rdb.HMGet(ctx, s.k.run+id, "r", "d").Result()
	if err != nil {
		return 0, fail("sweep runs", err)
	}
	rev, _ := v[0].(string)
	doc, _ := v[1].(string)
	if rev == "" {
		return 0, nil // deleted meanwhile
	}
	r, err := decodeRun(doc)
	if err != nil {
		return 0, err
	}
	if !r.Status.Terminal() || !r.Updated.Before(cutoff) {
		return 0, nil
	}
	n, err := deleteRunScript.Run(ctx, s.rdb, []string{s.k.run + id, s.k.runKeys, s.k.runsCreated, s.k.runsWake},
		rev, s.k.runsFlow, s.k.runsStatus, s.k.runsKey, lenPrefixed(r.Flow, r.Key), id).Int()
	return n, fail("sweep runs", err)
}

// closing reports whether a sweep failed because the store is closing.
func (s *Store) closing(err error) bool {
	select {
	case <-s.done:
		return true
	default:
		return errors.Is(err, redis.ErrClosed)
	}
}
