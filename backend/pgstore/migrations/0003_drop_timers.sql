-- The timers table backed store.Timers, which nothing called: the delays a
-- user sees live elsewhere (a run's wake time in runs, a retry's delay in
-- the broker). Dropped rather than left to mislead whoever reads the schema.
DROP TABLE IF EXISTS timers;
