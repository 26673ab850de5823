-- Which queued jobs a delivery worker has leased. With the embedded store
-- one relay process owns the queue, so a lease still held when that process
-- starts belongs to a predecessor that died (kill -9, power loss): the new
-- worker releases it at once instead of waiting for the lease to run out.
ALTER TABLE outbox ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
