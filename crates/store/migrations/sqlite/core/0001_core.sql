-- The core database: tenants and their senders, the recipient register, the
-- relay's deliveries and queue, and the audit log. Times are RFC 3339 UTC text.

-- A tenant is the unit of isolation: every sender-side row carries tenant_id.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TEXT NOT NULL
);

-- API credentials: only the SHA-256 of the secret is stored.
CREATE TABLE credentials (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    label       TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX credentials_tenant ON credentials(tenant_id);

-- Sending organisations (authorities, municipalities, regions). A tenant that
-- is a förmedlare owns several; it may send only for the senders it owns.
CREATE TABLE senders (
    id          TEXT PRIMARY KEY,          -- organisation number, "16" + 10 digits
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX senders_tenant ON senders(tenant_id);

-- Public keys a sender signs deliveries with.
CREATE TABLE sender_keys (
    key_id      TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    sender_id   TEXT NOT NULL REFERENCES senders(id),
    public_key  TEXT NOT NULL,             -- base64 Ed25519
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Mailbox operators (brevlådeoperatörer) and where to deliver to them.
CREATE TABLE operators (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    delivery_url  TEXT NOT NULL,
    ui_url        TEXT NOT NULL,
    sealing_key   TEXT NOT NULL,           -- base64 X25519 (HPKE) public key
    receipt_key   TEXT NOT NULL,           -- base64 Ed25519 key that signs receipts
    updated_at    TEXT NOT NULL
);

-- The recipient register (förmedlingsadressregister).
CREATE TABLE recipients (
    id           TEXT PRIMARY KEY,         -- canonical 12 digits
    status       TEXT NOT NULL CHECK (status IN ('registered', 'pending', 'deregistered')),
    operator_id  TEXT REFERENCES operators(id),
    updated_at   TEXT NOT NULL
);

CREATE TABLE refused_senders (
    recipient_id TEXT NOT NULL REFERENCES recipients(id),
    sender_id    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (recipient_id, sender_id)
) WITHOUT ROWID;

CREATE TABLE batches (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    created_at  TEXT NOT NULL,
    submitted   INTEGER NOT NULL,
    rejected    INTEGER NOT NULL
);

-- One row per accepted delivery. The content is never stored here in the
-- clear: `sealed` is already encrypted to the mailbox operator, `paper` jobs
-- hold content encrypted under the relay's key-encryption key.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    sender_id        TEXT NOT NULL,
    recipient_id     TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,        -- SHA-256 of the signed canonical form
    batch_id         TEXT,
    message_ids      TEXT NOT NULL,        -- JSON list of the sender's message ids
    status           TEXT NOT NULL CHECK (status IN ('accepted', 'delivered', 'paper', 'not_delivered', 'failed')),
    status_reason    TEXT,
    operator_id      TEXT,
    received_at      TEXT NOT NULL,
    status_at        TEXT NOT NULL,
    delivered_at     TEXT,
    receipt          TEXT,                 -- the operator's signed receipt, JSON
    UNIQUE (tenant_id, sender_id, idempotency_key)
);
CREATE INDEX deliveries_tenant_batch ON deliveries(tenant_id, batch_id);

-- The relay's work queue towards mailbox operators. A row leaves the queue
-- only when the operator's signed receipt is recorded.
CREATE TABLE outbox (
    delivery_id      TEXT PRIMARY KEY REFERENCES deliveries(id),
    operator_id      TEXT NOT NULL,
    sealed           BLOB NOT NULL,        -- JSON SealedDelivery, content HPKE-encrypted
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox(next_attempt_at);

-- Deliveries to print and post, for the paper-mail service to consume.
CREATE TABLE paper_queue (
    delivery_id   TEXT PRIMARY KEY REFERENCES deliveries(id),
    recipient_id  TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL,
    content       BLOB NOT NULL,           -- the signed delivery, AES-256-GCM
    queued_at     TEXT NOT NULL,
    printed_at    TEXT
);

-- Status changes in order, so a sender can follow them from a cursor.
CREATE TABLE status_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX status_events_tenant ON status_events(tenant_id, seq);
