-- Credentials scoped to named senders, and senders removed from a tenant
-- (issue 17). A credential with all_senders = 1 (every credential made
-- before this migration) may act for every sender of its tenant; one with 0
-- only for the senders listed in credential_senders.
ALTER TABLE credentials ADD COLUMN all_senders INTEGER NOT NULL DEFAULT 1 CHECK (all_senders IN (0, 1));

CREATE TABLE credential_senders (
    credential_id TEXT NOT NULL REFERENCES credentials(id),
    sender_id     TEXT NOT NULL REFERENCES senders(id),
    PRIMARY KEY (credential_id, sender_id)
) WITHOUT ROWID;

-- A removed sender keeps its row (and its deliveries, keys and audit
-- entries: evidence), so its id stays taken: only the platform operator
-- brings it back, explicitly (decision 0016).
ALTER TABLE senders ADD COLUMN removed_at TEXT;

-- The credential that submitted a batch: it sees the batch's totals even
-- when none of its items was accepted. NULL for batches made before.
ALTER TABLE batches ADD COLUMN credential_id TEXT;

-- Statistics and the status feed filter a tenant's deliveries by sender.
CREATE INDEX deliveries_tenant_sender_received ON deliveries(tenant_id, sender_id, received_at);
