package orchestration_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/batonhq/baton/backend/embedded"
	"github.com/batonhq/baton/backend/redisstore"
	"github.com/batonhq/baton/flow"
	"github.com/redis/go-redis/v9"
)

// Runs kept in a store that is not the transport (Redis): what each
// transition sends waits in the store's outbox, written with the run, and
// the coordinator relays it to the services on the bus.
func TestOrdersOrchestratedWithRunsInRedis(t *testing.T) {
	url := os.Getenv("BATON_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	var b [8]byte
	rand.Read(b[:])
	prefix := "batontest:" + hex.EncodeToString(b[:]) + ":"
	runs, err := redisstore.Open(context.Background(), redisstore.Config{URL: url, Prefix: prefix})
	if err != nil {
		msg := fmt.Sprintf("Redis is not available (%v); start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no (or set BATON_REDIS_URL)", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer runs.Close()
	t.Cleanup(func() { deleteKeys(t, url, prefix) })
	messages, err := embedded.Open(embedded.Config{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer messages.Close()
	runOrders(t, broker{messages}, runs, 100)
}

// deleteKeys removes the keys the test's store wrote.
func deleteKeys(t *testing.T, url, prefix string) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Error(err)
		return
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			t.Errorf("delete %s: %v", iter.Val(), err)
			return
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s*: %v", prefix, err)
	}
}

// broker is the embedded bus without its store, as a broker is: its commits
// would write the services' inbox and journal to the embedded store, apart
// from the runs' (which bus.New and flow.New refuse), so the services keep
// theirs in Redis too and are settled step by step, as on RabbitMQ.
type broker struct{ flow.Transport }
