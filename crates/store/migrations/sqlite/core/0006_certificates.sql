-- Trust boundaries (issue 16): what the register certifies.
--
-- A sender key or an operator row is used only with a certificate signed
-- by the register's key (kuvert_mailbox::certificate); a row written by
-- anyone without that key (a database writer) has none that verifies, and
-- is refused by the relay and by the mailbox. Rows from before this
-- migration have no certificate: a sender key is then refused at intake
-- (`sender_key_not_certified`) until the platform operator adds it again;
-- the built-in operator is certified again at every start.
ALTER TABLE sender_keys ADD COLUMN certificate TEXT;      -- JSON SenderKeyCertificate
ALTER TABLE sender_keys ADD COLUMN revocation TEXT;       -- JSON SenderKeyRevocation, once revoked
ALTER TABLE operators ADD COLUMN certificate TEXT;        -- JSON OperatorCertificate

-- The register's certificate key is published with the installation's
-- keys; SQLite cannot change a CHECK, so the table is rebuilt.
CREATE TABLE published_keys_new (
    owner        TEXT NOT NULL,
    purpose      TEXT NOT NULL CHECK (purpose IN ('receipt', 'sealing', 'relay_seal', 'audit_checkpoint', 'register_certificate')),
    key_id       TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    valid_from   TEXT NOT NULL,
    valid_until  TEXT,
    PRIMARY KEY (owner, purpose, key_id, valid_from)
);
INSERT INTO published_keys_new SELECT owner, purpose, key_id, public_key, valid_from, valid_until FROM published_keys;
DROP TABLE published_keys;
ALTER TABLE published_keys_new RENAME TO published_keys;
