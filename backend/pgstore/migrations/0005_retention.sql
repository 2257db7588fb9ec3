-- A dead letter keeps at most a bounded prefix of an oversized body:
-- truncated says it was cut, size is the body's length as received.
ALTER TABLE dead_letters
    ADD COLUMN truncated boolean NOT NULL DEFAULT false,
    ADD COLUMN size integer NOT NULL DEFAULT 0;
-- Ended runs by when they ended, for the retention sweep.
CREATE INDEX runs_ended ON runs (updated, id) WHERE status IN ('completed', 'failed', 'cancelled');
