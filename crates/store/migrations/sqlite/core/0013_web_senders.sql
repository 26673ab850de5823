-- Sending by hand from the web (issue 18, decision 0020).
--
-- A person (e-ID) given the sender role for one sender of a tenant. Each
-- grant is backed by a credential of the tenant scoped to that one sender
-- (credentials, credential_senders): the relay's intake takes it as the
-- caller, so what a web sender may send and read is exactly what an API
-- credential scoped to the sender may, checked by the same queries, and
-- the audit log names the credential (the grant) as the actor. Its secret
-- is random and never shown: it opens no API. Revoking the grant revokes
-- the credential in the same transaction.
CREATE TABLE web_sender_grants (
    credential_id TEXT PRIMARY KEY REFERENCES credentials(id),
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    sender_id     TEXT NOT NULL REFERENCES senders(id),
    -- The canonical 12 digits of the person's identity number.
    person        TEXT NOT NULL,
    granted_at    TEXT NOT NULL,
    revoked_at    TEXT
) WITHOUT ROWID;

-- At most one active grant per person and sender; the person's grants
-- are what the sender pages look up on every request.
CREATE UNIQUE INDEX web_sender_grants_active
    ON web_sender_grants (person, tenant_id, sender_id) WHERE revoked_at IS NULL;

-- The key the server signs web deliveries with, per sender: its public
-- half is a sender key like any other (sender_keys, with the register's
-- certificate); its private half is kept here encrypted under the
-- installation's web-sender key-encryption key (keys/web-sender-kek.aes256),
-- the data key wrapped and bound to the key id.
CREATE TABLE web_sender_keys (
    key_id       TEXT PRIMARY KEY REFERENCES sender_keys(key_id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    sender_id    TEXT NOT NULL REFERENCES senders(id),
    wrapped_key  BLOB NOT NULL,
    private_key  BLOB NOT NULL,
    created_at   TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX web_sender_keys_by_sender ON web_sender_keys (tenant_id, sender_id, created_at);
