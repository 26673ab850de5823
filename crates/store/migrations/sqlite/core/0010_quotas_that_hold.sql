-- Quotas that hold (decision 0015). A tenant's explicit settings move to a
-- table of their own: no row is the installation's default, a row with a
-- NULL quota is unlimited, a number is that limit. What tenants had set
-- comes along; what they had left unset (unlimited until now) now takes the
-- defaults.
CREATE TABLE tenant_quotas (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    dimension TEXT NOT NULL,
    quota INTEGER CHECK (quota IS NULL OR quota > 0),
    PRIMARY KEY (tenant_id, dimension)
) WITHOUT ROWID;
INSERT INTO tenant_quotas (tenant_id, dimension, quota)
    SELECT id, 'deliveries_per_day', max_per_day FROM tenants WHERE max_per_day > 0;
INSERT INTO tenant_quotas (tenant_id, dimension, quota)
    SELECT id, 'deliveries_per_second', max_per_second FROM tenants WHERE max_per_second > 0;
INSERT INTO tenant_quotas (tenant_id, dimension, quota)
    SELECT id, 'batch_size', max_batch FROM tenants WHERE max_batch > 0;
ALTER TABLE tenants DROP COLUMN max_per_day;
ALTER TABLE tenants DROP COLUMN max_per_second;
ALTER TABLE tenants DROP COLUMN max_batch;

-- What each tenant used per UTC day: reserved before a request's work,
-- settled to what was accepted after it.
CREATE TABLE quota_usage (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    counter TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, counter)
) WITHOUT ROWID;

-- The per-second token buckets (tokens may be negative: debt), shared by
-- every node and kept across restarts.
CREATE TABLE rate_buckets (
    tenant_id TEXT NOT NULL,
    bucket TEXT NOT NULL,
    tokens REAL NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, bucket)
) WITHOUT ROWID;
