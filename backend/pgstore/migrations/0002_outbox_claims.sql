-- Relays claim outbox messages until claimed_until, so that coordinators
-- sharing the store send each message once (a lapsed claim may be taken
-- over). -infinity: never claimed.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz NOT NULL DEFAULT '-infinity';
