// Package redisstore is a Baton store.Store kept in Redis: the inbox, the
// journal, the dead letters, the flow runs with their outbox, and the
// schedules, so that several coordinator and worker processes share them.
//
// It uses github.com/redis/go-redis/v9, the official Redis client for Go,
// maintained by Redis itself: it pools connections, reconnects by itself and
// runs Lua scripts by their SHA1 (EVALSHA, falling back to EVAL after a
// restart emptied the script cache).
//
// Every write that must be atomic is one Lua script, which Redis runs without
// interleaving any other command: a run transition checks the stored
// revision, writes the run's document, moves its indexes and appends the
// messages it sends to the outbox, or does nothing. Times that are compared
// or ordered (creation and wake times of runs) are kept to the
// nanosecond in sorted sets ordered by member (fixed-width hexadecimal time,
// then the id), so ties break by id and nothing is rounded.
//
// # Keys
//
// Every key starts with Config.Prefix (default "baton:"):
//
//	inbox:LEN:GROUP:ID      one mark, with a TTL of the retention window
//	inbox:expiry            sorted set by expiry (ExpireInbox): MarkSeen's marks, and
//	                        buckets b:N, the marks of one call of the settler
//	inbox:b:N, inbox:buckets  a bucket's list of marks (expiring with them), its counter
//	journal:seq, journal    counter, stream of records of entries (ID = the
//	                        Seq of the record's last entry, "-0"; one write's
//	                        entries in one record)
//	journal:corr:ID         list of the records holding one correlation id's entries
//	dead:seq, dead, dead:ids
//	run:ID                  hash: document, revision, status, flow, key, index members
//	runs:keys               hash: LEN:FLOW:KEY -> run id
//	runs:created, runs:flow:F, runs:status:S, runs:key:K, runs:wake
//	outbox                  stream of messages waiting for the relay
//	schedules, schedules:rev
//
// The scripts compute some key names from the prefix, so a store needs one
// Redis server (with replicas or Sentinel if wanted), not Redis Cluster.
//
// What survives a Redis restart depends on Redis's persistence settings, not
// on this package: see docs/backends.md.
package redisstore
