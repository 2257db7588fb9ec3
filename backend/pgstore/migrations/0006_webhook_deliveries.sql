-- The webhook outbox (store.Deliveries): one row per notification and
-- webhook, from the moment it is produced until the webhook answers it or
-- the sender gives it up. next_at is when it may be claimed: its next
-- attempt, or, while claimed, when the claim lapses.
CREATE TABLE webhook_deliveries (
	id         text COLLATE "C" PRIMARY KEY,
	webhook    text COLLATE "C" NOT NULL,
	kind       text NOT NULL,
	body       bytea NOT NULL,
	created    timestamptz NOT NULL,
	attempts   integer NOT NULL DEFAULT 0,
	next_at    timestamptz NOT NULL,
	last_error text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook, next_at, id);
