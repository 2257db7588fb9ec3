package redisstore

import (
	"context"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/batonhq/baton"
)

// DeleteNamespace deletes every key that begins with cfg.Prefix (default
// "baton:"), found with SCAN, and returns how many it deleted. Keys written
// while it runs may be left: stop the namespace's processes first.
func DeleteNamespace(ctx context.Context, cfg Config) (int, error) {
	const op = "redisstore delete namespace"
	rdb, prefix, err := connect(ctx, op, cfg)
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	n := 0
	iter := rdb.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		got, err := rdb.Unlink(ctx, batch...).Result()
		n += int(got)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			if err := flush(); err != nil {
				return n, fail("delete keys "+prefix+"*", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fail("scan keys "+prefix+"*", err)
	}
	if err := flush(); err != nil {
		return n, fail("delete keys "+prefix+"*", err)
	}
	return n, nil
}

// Groups returns, sorted, the consumer groups the store under cfg.Prefix
// knows: those in its journal and its dead letters. It writes nothing.
func Groups(ctx context.Context, cfg Config) ([]string, error) {
	s, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	seen := map[string]bool{}
	var after uint64
	for {
		entries, err := s.Since(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			seen[e.Group] = true
			after = e.Seq
		}
		if len(entries) < 1000 {
			break
		}
	}
	cursor := ""
	for {
		dead, err := s.ListDead(ctx, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, d := range dead {
			seen[d.Group] = true
			cursor = d.ID
		}
		if len(dead) < 1000 {
			break
		}
	}
	delete(seen, "")
	groups := make([]string, 0, len(seen))
	for g := range seen {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return groups, nil
}

// connect opens a plain client on cfg.URL.
func connect(ctx context.Context, op string, cfg Config) (*redis.Client, string, error) {
	if cfg.URL == "" {
		return nil, "", baton.Errorf(baton.Invalid, op, "no Redis URL given (e.g. redis://127.0.0.1:6379/0)")
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// The error may quote the URL, password and all.
		return nil, "", baton.Errorf(baton.Invalid, op, "cannot parse the Redis URL (expected redis://[:password@]host:port/db)")
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, "", baton.Errorf(baton.Unavailable, op, "cannot reach Redis at %s: %w", opt.Addr, err)
	}
	return rdb, prefix, nil
}

// globEscape escapes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
