-- Evidence a sender can check (issue: published keys, receipts bound to
-- what was signed, nothing delivered twice).

-- Every public key an owner signs or seals with, including keys rotated
-- out (valid_until set), so that old receipts keep verifying. Owner is
-- 'operator:<id>' for a mailbox operator, 'installation' for this
-- installation's relay seal and audit checkpoint keys.
CREATE TABLE published_keys (
    owner        TEXT NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('receipt', 'sealing', 'relay_seal', 'audit_checkpoint')),
    key_id       TEXT NOT NULL,
    public_key   TEXT NOT NULL,            -- base64 of the 32 raw bytes
    valid_from   TEXT NOT NULL,
    valid_until  TEXT,                     -- NULL while current
    PRIMARY KEY (owner, purpose, key_id, valid_from)
);

-- SHA-256 of the canonical bytes the sender signed. One signed delivery is
-- one delivery per sender, whatever idempotency key it is sent with.
-- Deliveries stored before this migration have none (NULLs never clash).
ALTER TABLE deliveries ADD COLUMN delivery_digest TEXT;
CREATE UNIQUE INDEX deliveries_sender_digest ON deliveries(sender_id, delivery_digest);

-- A batch sent again (its answer lost) is known by its items: the retry is
-- answered with the first batch id.
ALTER TABLE batches ADD COLUMN fingerprint TEXT;
CREATE UNIQUE INDEX batches_tenant_fingerprint ON batches(tenant_id, fingerprint);
