-- The metadata of a dead-lettered message (a flow step's routing: the
-- coordinator to reply to, the run, the step), which a replay sends again.
ALTER TABLE dead_letters ADD COLUMN meta json;
