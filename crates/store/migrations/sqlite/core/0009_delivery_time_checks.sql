-- What the delivery worker needs to judge a queued job at delivery time
-- (issue 17, decision 0014).

-- Poison quarantine. A job whose lease a stopped process left behind was
-- in flight at a crash, but in a group the culprit is unknown: it becomes
-- a `suspect` and is sent alone (nothing else in flight in the process),
-- with `solo` = 1 while that lone attempt runs. A lease left with `solo` = 1
-- is evidence against that job: `solo_crashes` counts such crashes in a
-- row, and the worker quarantines the job at `RetryPolicy::quarantine_after`.
-- An answer from the operator to a lone attempt clears both.
ALTER TABLE outbox ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN solo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN solo_crashes INTEGER NOT NULL DEFAULT 0;
-- Suspects are few (the jobs in flight at one crash): a small index.
CREATE INDEX outbox_suspects ON outbox(next_attempt_at) WHERE suspect = 1;

-- The sender key the delivery was signed with, so that the worker can stop
-- queued mail of a key revoked since (the key id is otherwise only inside
-- the content sealed to the operator). NULL for deliveries accepted before
-- this migration: the worker does not check those, the mailbox still does.
ALTER TABLE deliveries ADD COLUMN sender_key_id TEXT;
