-- The tables of a Baton store. Applied inside the store's schema (the
-- search_path is set to it), in one transaction, once.
-- Ids and names use the "C" collation: byte order, as the embedded store
-- sorts them, and cheaper comparisons.

-- Inbox: the event ids each consumer group handled, until they expire.
CREATE TABLE inbox (
    grp     text COLLATE "C" NOT NULL,
    id      text COLLATE "C" NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (grp, id)
);
CREATE INDEX inbox_expires ON inbox (expires);

-- Timers: payloads that become due.
CREATE TABLE timers (
    id      text COLLATE "C" PRIMARY KEY,
    due     timestamptz NOT NULL,
    payload bytea NOT NULL
);
CREATE INDEX timers_due ON timers (due, id);

-- Journal: the history of every business transaction. seq is assigned
-- under a lock held until commit, so entries become visible in seq order.
CREATE TABLE journal (
    seq            bigserial PRIMARY KEY,
    correlation_id text COLLATE "C" NOT NULL,
    at             timestamptz NOT NULL,
    outcome        text NOT NULL,
    entry          json NOT NULL
);
CREATE INDEX journal_correlation ON journal (correlation_id, seq);

-- Dead letters of every group.
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    grp            text COLLATE "C" NOT NULL,
    type           text NOT NULL,
    event_id       text NOT NULL,
    correlation_id text NOT NULL,
    attempts       integer NOT NULL,
    reason         text NOT NULL,
    at             timestamptz NOT NULL,
    body           bytea NOT NULL
);
CREATE INDEX dead_letters_group ON dead_letters (grp, id);

-- Runs of flows: the indexed fields as columns, the whole run as a JSON
-- document (json, not jsonb: kept as written, \u0000 allowed, and still
-- queryable with -> and ->>).
CREATE TABLE runs (
    id      text COLLATE "C" PRIMARY KEY,
    flow    text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    status  text COLLATE "C" NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    rev     bigint NOT NULL,
    wake    timestamptz,
    doc     json NOT NULL,
    UNIQUE (flow, key)
);
CREATE INDEX runs_created ON runs (created DESC, id DESC);
CREATE INDEX runs_flow_created ON runs (flow, created DESC, id DESC);
CREATE INDEX runs_status_created ON runs (status, created DESC, id DESC);
CREATE INDEX runs_key_created ON runs (key, created DESC, id DESC);
CREATE INDEX runs_wake ON runs (wake, id) WHERE wake IS NOT NULL;

-- Outbox: what run transitions send, written with them, until a relay has
-- published it. grp is empty for a message to every group bound to its type.
CREATE TABLE outbox (
    id      bigserial PRIMARY KEY,
    grp     text COLLATE "C" NOT NULL,
    type    text NOT NULL,
    msg_id  text NOT NULL,
    body    bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);

-- Schedules, compared by revision on save.
CREATE TABLE schedules (
    name text COLLATE "C" PRIMARY KEY,
    rev  bigint NOT NULL,
    doc  json NOT NULL
);
