package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/store"
	"github.com/redis/go-redis/v9"
)

var _ store.Deliveries = (*Store)(nil)

// The webhook outbox: each delivery is a hash PREFIX webhook:d:ID (fields w
// webhook, k kind, b body, c created, a attempts, n next, e last error; times
// in Unix milliseconds), in the sorted set PREFIX webhook:due:WEBHOOK scored
// by its Next (ties go by id, as a sorted set orders equal scores), and
// counted in PREFIX webhook:count. Each operation is one script, so a claim
// moves its deliveries' scores atomically and concurrent claims take
// different ones.

var addDeliveriesScript = redis.NewScript(`
for i = 2, #ARGV, 8 do
  local key = ARGV[1] .. 'd:' .. ARGV[i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'w', ARGV[i+1], 'k', ARGV[i+2], 'b', ARGV[i+3], 'c', ARGV[i+4], 'a', ARGV[i+5], 'n', ARGV[i+6], 'e', ARGV[i+7])
    redis.call('ZADD', ARGV[1] .. 'due:' .. ARGV[i+1], ARGV[i+6], ARGV[i])
    redis.call('INCR', ARGV[1] .. 'count')
  end
end
return 0`)

// claimDeliveriesScript: ARGV prefix, webhook, now, limit, until; returns
// {id, webhook, kind, body, created, attempts, next, error} per delivery.
var claimDeliveriesScript = redis.NewScript(`
local due = ARGV[1] .. 'due:' .. ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. 'd:' .. id
  redis.call('ZADD', due, ARGV[5], id)
  redis.call('HSET', key, 'n', ARGV[5])
  local v = redis.call('HMGET', key, 'w', 'k', 'b', 'c', 'a', 'n', 'e')
  table.insert(out, {id, v[1], v[2], v[3], v[4], v[5], v[6], v[7]})
end
return out`)

var retryDeliveryScript = redis.NewScript(`
local key = ARGV[1] .. 'd:' .. ARGV[2]
local w = redis.call('HGET', key, 'w')
if not w then return 0 end
redis.call('HSET', key, 'a', ARGV[3], 'n', ARGV[4], 'e', ARGV[5])
redis.call('ZADD', ARGV[1] .. 'due:' .. w, ARGV[4], ARGV[2])
return 1`)

var deleteDeliveryScript = redis.NewScript(`
local key = ARGV[1] .. 'd:' .. ARGV[2]
local w = redis.call('HGET', key, 'w')
if not w then return 0 end
redis.call('DEL', key)
redis.call('ZREM', ARGV[1] .. 'due:' .. w, ARGV[2])
redis.call('DECR', ARGV[1] .. 'count')
return 1`)

func (s *Store) deliveryPrefix() string { return s.cfg.Prefix + "webhook:" }

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// AddDeliveries stores ds; ids already stored are left as they are.
func (s *Store) AddDeliveries(ctx context.Context, ds ...store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	args := make([]any, 0, 1+8*len(ds))
	args = append(args, s.deliveryPrefix())
	for _, d := range ds {
		if d.ID == "" {
			return baton.Errorf(baton.Invalid, "add webhook delivery", "empty id")
		}
		args = append(args, d.ID, d.Webhook, d.Kind, d.Body, ms(d.Created), d.Attempts, ms(d.Next), d.LastError)
	}
	return fail("add webhook deliveries", addDeliveriesScript.Run(ctx, s.rdb, nil, args...).Err())
}

// ClaimDeliveries returns up to limit due deliveries of webhook, earliest
// Next first, with Next moved to now+lease.
func (s *Store) ClaimDeliveries(ctx context.Context, webhook string, now time.Time, limit int, lease time.Duration) ([]store.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	const op = "claim webhook deliveries"
	rows, err := claimDeliveriesScript.Run(ctx, s.rdb, nil, s.deliveryPrefix(), webhook, ms(now), limit, ms(now.Add(lease))).Slice()
	if err != nil {
		return nil, fail(op, err)
	}
	out := make([]store.Delivery, 0, len(rows))
	for _, row := range rows {
		v, ok := row.([]any)
		if !ok || len(v) != 8 {
			return nil, fail(op, errors.New("unexpected reply from the claim script"))
		}
		str := func(i int) string { s, _ := v[i].(string); return s }
		num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
		out = append(out, store.Delivery{ID: str(0), Webhook: str(1), Kind: str(2), Body: []byte(str(3)),
			Created: time.UnixMilli(num(4)).UTC(), Attempts: int(num(5)), Next: time.UnixMilli(num(6)).UTC(), LastError: str(7)})
	}
	return out, nil
}

// RetryDelivery saves d's Attempts, Next and LastError, ending its claim.
func (s *Store) RetryDelivery(ctx context.Context, d store.Delivery) error {
	err := retryDeliveryScript.Run(ctx, s.rdb, nil, s.deliveryPrefix(), d.ID, d.Attempts, ms(d.Next), d.LastError).Err()
	return fail("retry webhook delivery", err)
}

// DeleteDelivery removes a delivery; an unknown id is not an error.
func (s *Store) DeleteDelivery(ctx context.Context, id string) error {
	return fail("delete webhook delivery", deleteDeliveryScript.Run(ctx, s.rdb, nil, s.deliveryPrefix(), id).Err())
}

// CountDeliveries is the number of deliveries stored.
func (s *Store) CountDeliveries(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.deliveryPrefix()+"count").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, fail("count webhook deliveries", err)
}
