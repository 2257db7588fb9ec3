package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

// A run is a hash under run:ID: d (the document store.AppendRun writes),
// r (revision), s (status), f (flow), k (key), m (its member in the
// creation-time indexes) and w (its member in the wake index, or empty).
// runs:keys maps flow and key to the run id. The indexes by creation time
// (all runs, per flow, per status, per key) and the wake index are sorted
// sets of "time:id" members, ordered by member.

var createRunScript = redis.NewScript(`
local existing = redis.call('HGET', KEYS[2], ARGV[2])
if existing then
  return {'exists', redis.call('HGET', ARGV[1] .. existing, 'd')}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken'} end
redis.call('HSET', KEYS[1], 'd', ARGV[4], 'r', '1', 's', ARGV[5], 'f', ARGV[6], 'k', ARGV[7], 'm', ARGV[8], 'w', ARGV[9])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[8])
redis.call('ZADD', KEYS[4], 0, ARGV[8])
redis.call('ZADD', KEYS[5], 0, ARGV[8])
redis.call('ZADD', KEYS[6], 0, ARGV[8])
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[7], 0, ARGV[9]) end
for i = 10, #ARGV, 4 do
  redis.call('XADD', KEYS[8], '*', 'g', ARGV[i], 't', ARGV[i+1], 'i', ARGV[i+2], 'b', ARGV[i+3])
end
return {'created'}`)

var saveRunScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'r', 's', 'w', 'm', 'f', 'k')
if not v[1] then return {'missing'} end
if v[1] ~= ARGV[2] then return {'conflict', v[1]} end
if v[5] ~= ARGV[6] or v[6] ~= ARGV[7] then return {'moved', v[5], v[6]} end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'r', ARGV[8], 's', ARGV[4], 'w', ARGV[5])
if v[2] ~= ARGV[4] then
  redis.call('ZREM', ARGV[1] .. v[2], v[4])
  redis.call('ZADD', ARGV[1] .. ARGV[4], 0, v[4])
end
if v[3] ~= ARGV[5] then
  if v[3] ~= '' then redis.call('ZREM', KEYS[2], v[3]) end
  if ARGV[5] ~= '' then redis.call('ZADD', KEYS[2], 0, ARGV[5]) end
end
for i = 9, #ARGV, 4 do
  redis.call('XADD', KEYS[3], '*', 'g', ARGV[i], 't', ARGV[i+1], 'i', ARGV[i+2], 'b', ARGV[i+3])
end
return {'saved'}`)

// listRunsScript walks an index newest first from ARGV[1] down to ARGV[2],
// at most ARGV[3] members, and returns the documents of the runs that match
// the filters, at most ARGV[4]: {last member walked, 1 if the index ended,
// documents...}.
var listRunsScript = redis.NewScript(`
local scan = tonumber(ARGV[3])
local ms = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, scan)
local want = tonumber(ARGV[4])
local out = {'', 0}
if #ms < scan then out[2] = 1 end
local n = 0
for _, m in ipairs(ms) do
  out[1] = m
  local v = redis.call('HMGET', ARGV[8] .. string.sub(m, 18), 's', 'f', 'k', 'd')
  if v[4] and (ARGV[5] == '' or v[1] == ARGV[5]) and (ARGV[6] == '' or v[2] == ARGV[6]) and (ARGV[7] == '' or v[3] == ARGV[7]) then
    out[#out+1] = v[4]
    n = n + 1
    if n >= want then
      out[2] = 0
      break
    end
  end
end
return out`)

var dueRunsScript = redis.NewScript(`
local ms = redis.call('ZRANGEBYLEX', KEYS[1], '-', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, m in ipairs(ms) do
  local d = redis.call('HGET', ARGV[3] .. string.sub(m, 18), 'd')
  if d then out[#out+1] = d end
end
return out`)

func outboundArgs(args []any, out []store.Outbound) []any {
	for _, o := range out {
		args = append(args, o.Group, o.Type, o.ID, o.Body)
	}
	return args
}

// validJSON checks the raw members of a run, which AppendRun writes as they
// are.
func validJSON(r store.Run) error {
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"input", r.Input}, {"result", r.Result}, {"data", r.Data}} {
		if len(f.v) > 0 && !json.Valid(f.v) {
			return baton.Errorf(baton.Invalid, "run "+r.ID, "its %s is not valid JSON", f.name)
		}
	}
	return nil
}

func wakeMember(r *store.Run) string {
	if r.Wake.IsZero() {
		return ""
	}
	return member(r.Wake, r.ID)
}

func decodeRun(v string) (store.Run, error) {
	var r store.Run
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return r, corrupt("runs", err)
	}
	return r, nil
}

// CreateRun stores r with Rev 1 and appends out to the outbox, unless the
// flow has a run with r.Key: then it returns that run.
func (s *Store) CreateRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, bool, error) {
	if r.ID == "" || r.Flow == "" || r.Key == "" {
		return r, false, baton.Errorf(baton.Invalid, "create run", "a run needs an id, a flow and a key")
	}
	r.Rev = 1
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	if r.Updated.IsZero() {
		r.Updated = r.Created
	}
	if err := validJSON(r); err != nil {
		return r, false, err
	}
	doc := store.AppendRun(nil, &r)
	keys := []string{
		s.k.run + r.ID, s.k.runKeys, s.k.runsCreated, s.k.runsFlow + r.Flow,
		s.k.runsStatus + string(r.Status), s.k.runsKey + r.Key, s.k.runsWake, s.k.outbox,
	}
	args := make([]any, 0, 9+4*len(out))
	args = append(args, s.k.run, lenPrefixed(r.Flow, r.Key), r.ID, doc, string(r.Status), r.Flow, r.Key,
		member(r.Created, r.ID), wakeMember(&r))
	args = outboundArgs(args, out)
	v, err := createRunScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return r, false, fail("create run "+r.ID, err)
	}
	switch v[0] {
	case "created":
		return r, true, nil
	case "exists":
		d, ok := v[1].(string)
		if !ok {
			return r, false, corrupt("create run "+r.ID, errorString("the run of flow "+r.Flow+" and key "+r.Key+" is indexed but missing"))
		}
		got, err := decodeRun(d)
		return got, false, err
	default:
		return r, false, baton.Errorf(baton.Conflict, "create run "+r.ID, "another run has id %s", r.ID)
	}
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, id string) (store.Run, error) {
	v, err := s.rdb.HGet(ctx, s.k.run+id, "d").Result()
	if err == redis.Nil {
		return store.Run{}, notFound("run "+id, "run")
	}
	if err != nil {
		return store.Run{}, fail("run "+id, err)
	}
	return decodeRun(v)
}

// SaveRun stores r if the stored revision is r.Rev, and appends out to the
// outbox in the same script.
func (s *Store) SaveRun(ctx context.Context, r store.Run, out []store.Outbound) (store.Run, error) {
	if err := validJSON(r); err != nil {
		return r, err
	}
	expect := r.Rev
	r.Rev++
	if r.Updated.IsZero() {
		r.Updated = time.Now().UTC()
	}
	doc := store.AppendRun(nil, &r)
	args := make([]any, 0, 8+4*len(out))
	args = append(args, s.k.runsStatus, strconv.FormatInt(expect, 10), doc, string(r.Status), wakeMember(&r),
		r.Flow, r.Key, strconv.FormatInt(r.Rev, 10))
	args = outboundArgs(args, out)
	v, err := saveRunScript.Run(ctx, s.rdb, []string{s.k.run + r.ID, s.k.runsWake, s.k.outbox}, args...).Slice()
	op := "save run " + r.ID
	if err != nil {
		r.Rev = expect
		return r, fail(op, err)
	}
	switch v[0] {
	case "saved":
		return r, nil
	case "missing":
		r.Rev = expect
		return r, notFound(op, "run")
	case "conflict":
		r.Rev = expect
		return r, baton.Errorf(baton.Conflict, op, "revision %v was saved meanwhile (this save started from %d)", v[1], expect)
	default:
		r.Rev = expect
		return r, baton.Errorf(baton.Invalid, op, "the run belongs to flow %q and key %q; a save cannot change them", v[1], v[2])
	}
}

const (
	maxRunPage = 1000
	listScan   = 256
)

// ListRuns returns the runs q selects, newest first (ties by id,
// descending), walking the narrowest index that applies and filtering the
// rest in Redis.
func (s *Store) ListRuns(ctx context.Context, q store.RunQuery) ([]store.Run, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxRunPage {
		limit = maxRunPage
	}
	hi, lo := "+", "-"
	if !q.Since.IsZero() {
		lo = "[" + lexTime(q.Since)
	}
	if !q.Until.IsZero() {
		hi = "(" + lexTime(q.Until)
	}
	if q.After != "" {
		m, err := s.rdb.HGet(ctx, s.k.run+q.After, "m").Result()
		if err == redis.Nil {
			return nil, notFound("list runs after "+q.After, "run")
		}
		if err != nil {
			return nil, fail("list runs", err)
		}
		if hi == "+" || m < hi[1:] {
			hi = "(" + m
		}
	}
	index, err := s.runIndex(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []store.Run
	for len(out) < limit {
		v, err := listRunsScript.Run(ctx, s.rdb, []string{index}, hi, lo, max(listScan, limit), limit-len(out),
			string(q.Status), q.Flow, q.Key, s.k.run).Result()
		if err != nil {
			return nil, fail("list runs", err)
		}
		a, _ := v.([]any)
		if len(a) < 2 {
			return nil, corrupt("list runs", errorString("short reply"))
		}
		for _, d := range strs(a[2:]) {
			r, err := decodeRun(d)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		last, _ := a[0].(string)
		if done, _ := a[1].(int64); done == 1 || last == "" {
			break
		}
		hi = "(" + last
	}
	return out, nil
}

// runIndex picks the index to walk for q: the business key's, else the
// smaller of the flow's and the status's, else the one given, else all.
func (s *Store) runIndex(ctx context.Context, q store.RunQuery) (string, error) {
	switch {
	case q.Key != "":
		return s.k.runsKey + q.Key, nil
	case q.Flow != "" && q.Status != "":
		f, st := s.k.runsFlow+q.Flow, s.k.runsStatus+string(q.Status)
		var fn, sn *redis.IntCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			fn, sn = p.ZCard(ctx, f), p.ZCard(ctx, st)
			return nil
		})
		if err != nil {
			return "", fail("list runs", err)
		}
		if sn.Val() < fn.Val() {
			return st, nil
		}
		return f, nil
	case q.Flow != "":
		return s.k.runsFlow + q.Flow, nil
	case q.Status != "":
		return s.k.runsStatus + string(q.Status), nil
	}
	return s.k.runsCreated, nil
}

// DueRuns returns up to limit runs whose Wake is not after now, earliest
// first.
func (s *Store) DueRuns(ctx context.Context, now time.Time, limit int) ([]store.Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	v, err := dueRunsScript.Run(ctx, s.rdb, []string{s.k.runsWake}, "("+lexTime(now.Add(time.Nanosecond)), limit, s.k.run).Result()
	if err != nil {
		return nil, fail("due runs", err)
	}
	docs := strs(v)
	out := make([]store.Run, 0, len(docs))
	for _, d := range docs {
		r, err := decodeRun(d)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// The outbox is a stream: Redis assigns the ids, in order. Relays claim
// its entries through the stream's consumer group relayGroup: XREADGROUP
// hands each new entry to one relay, and XAUTOCLAIM takes over the entries
// whose claim has lapsed (idle in the group's pending list for a lease).
// Every relay uses one consumer name, relayGroup too: claims are told apart
// by time, not by owner. MarkSent acknowledges and deletes entries.
const relayGroup = "relay"

// ClaimOutbound returns up to limit messages not yet marked sent and not
// under another claim, oldest first, claimed for lease.
func (s *Store) ClaimOutbound(ctx context.Context, limit int, lease time.Duration) ([]store.Pending, error) {
	if limit <= 0 {
		return nil, nil
	}
	msgs, err := s.claimOutbound(ctx, limit, lease)
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// A new store, or a Redis that restarted without the stream.
		err = s.rdb.XGroupCreateMkStream(ctx, s.k.outbox, relayGroup, "0").Err()
		if err == nil || strings.HasPrefix(err.Error(), "BUSYGROUP") {
			msgs, err = s.claimOutbound(ctx, limit, lease)
		}
	}
	if err != nil {
		return nil, fail("outbox", err)
	}
	out := make([]store.Pending, 0, len(msgs))
	for _, m := range msgs {
		str := func(f string) string { v, _ := m.Values[f].(string); return v }
		if len(m.Values) == 0 {
			continue // deleted while claimed
		}
		out = append(out, store.Pending{ID: m.ID, Outbound: store.Outbound{Group: str("g"), Type: str("t"), ID: str("i"), Body: []byte(str("b"))}})
	}
	slices.SortFunc(out, func(a, b store.Pending) int { return compareStreamIDs(a.ID, b.ID) })
	return out, nil
}

// claimOutbound takes over lapsed claims first, then new entries.
func (s *Store) claimOutbound(ctx context.Context, limit int, lease time.Duration) ([]redis.XMessage, error) {
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: s.k.outbox, Group: relayGroup, Consumer: relayGroup,
		MinIdle: lease, Start: "0-0", Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, err
	}
	if len(msgs) >= limit {
		return msgs, nil
	}
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: relayGroup, Consumer: relayGroup, Streams: []string{s.k.outbox, ">"},
		Count: int64(limit - len(msgs)), Block: -1,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return msgs, nil
	}
	if err != nil {
		return nil, err
	}
	for _, st := range streams {
		msgs = append(msgs, st.Messages...)
	}
	return msgs, nil
}

// compareStreamIDs orders stream entry ids ("ms-seq").
func compareStreamIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if c := cmp.Compare(x, y); c != 0 {
		return c
	}
	x, _ = strconv.ParseUint(as, 10, 64)
	y, _ = strconv.ParseUint(bs, 10, 64)
	return cmp.Compare(x, y)
}

// CountOutbound is the number of messages in the outbox, claimed or not.
func (s *Store) CountOutbound(ctx context.Context) (int64, error) {
	n, err := s.rdb.XLen(ctx, s.k.outbox).Result()
	if err != nil {
		return 0, fail("outbox", err)
	}
	return n, nil
}

// MarkSent removes sent messages; ids that are not in the outbox are
// ignored.
func (s *Store) MarkSent(ctx context.Context, ids ...string) error {
	valid := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !streamID(id) })
	if len(valid) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	ack := pipe.XAck(ctx, s.k.outbox, relayGroup, valid...)
	del := pipe.XDel(ctx, s.k.outbox, valid...)
	pipe.Exec(ctx) // the errors are the commands'
	if err := ack.Err(); err != nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
		return fail("outbox", err) // NOGROUP: nothing was ever claimed
	}
	return fail("outbox", del.Err())
}

// streamID reports whether id has the form of a stream entry id, which XDEL
// requires of every id it is given.
func streamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// Schedules: a hash of JSON documents by name and a hash of their
// revisions, which a script compares.

var saveScheduleScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
if cur ~= ARGV[2] then return {'conflict', cur} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return {'saved'}`)

// SaveSchedule stores sc if the stored revision is sc.Rev (0: new).
func (s *Store) SaveSchedule(ctx context.Context, sc store.Schedule) (store.Schedule, error) {
	if sc.Name == "" {
		return sc, baton.Errorf(baton.Invalid, "save schedule", "a schedule needs a name")
	}
	expect := sc.Rev
	sc.Rev++
	doc, err := json.Marshal(sc)
	if err != nil {
		sc.Rev = expect
		return sc, baton.Errorf(baton.Invalid, "save schedule", "encode: %w", err)
	}
	op := "save schedule " + sc.Name
	v, err := saveScheduleScript.Run(ctx, s.rdb, []string{s.k.schedules, s.k.schedulesRevision},
		sc.Name, strconv.FormatInt(expect, 10), strconv.FormatInt(sc.Rev, 10), doc).Slice()
	if err != nil {
		sc.Rev = expect
		return sc, fail(op, err)
	}
	if v[0] != "saved" {
		sc.Rev = expect
		return sc, baton.Errorf(baton.Conflict, op, "revision %v was saved meanwhile (this save started from %d)", v[1], expect)
	}
	return sc, nil
}

func decodeSchedule(v string) (store.Schedule, error) {
	var sc store.Schedule
	if err := json.Unmarshal([]byte(v), &sc); err != nil {
		return sc, corrupt("schedules", err)
	}
	return sc, nil
}

// Schedule returns one schedule.
func (s *Store) Schedule(ctx context.Context, name string) (store.Schedule, error) {
	v, err := s.rdb.HGet(ctx, s.k.schedules, name).Result()
	if err == redis.Nil {
		return store.Schedule{}, notFound("schedule "+name, "schedule")
	}
	if err != nil {
		return store.Schedule{}, fail("schedule "+name, err)
	}
	return decodeSchedule(v)
}

// ListSchedules returns every schedule, by name.
func (s *Store) ListSchedules(ctx context.Context) ([]store.Schedule, error) {
	m, err := s.rdb.HGetAll(ctx, s.k.schedules).Result()
	if err != nil {
		return nil, fail("schedules", err)
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]store.Schedule, 0, len(names))
	for _, n := range names {
		sc, err := decodeSchedule(m[n])
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// DeleteSchedule removes a schedule.
func (s *Store) DeleteSchedule(ctx context.Context, name string) error {
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, s.k.schedules, name)
		p.HDel(ctx, s.k.schedulesRevision, name)
		return nil
	})
	if err != nil {
		return fail("schedule "+name, err)
	}
	if del.Val() == 0 {
		return notFound("schedule "+name, "schedule")
	}
	return nil
}
