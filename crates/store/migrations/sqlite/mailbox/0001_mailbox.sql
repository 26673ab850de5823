-- The mailbox operator's own database. Subjects, bodies and attachments are
-- stored only encrypted: each message has its own data key, wrapped by the
-- mailbox's key-encryption key.

CREATE TABLE mailbox_deliveries (
    delivery_id   TEXT PRIMARY KEY,
    recipient_id  TEXT NOT NULL,
    sender_id     TEXT NOT NULL,
    relay_key_id  TEXT NOT NULL,
    received_at   TEXT NOT NULL,        -- the relay's seal time
    delivered_at  TEXT NOT NULL,        -- the legal moment of delivery
    receipt       TEXT NOT NULL         -- the signed receipt, JSON, replayed on redelivery
);

CREATE TABLE mailbox_messages (
    id             TEXT PRIMARY KEY,
    delivery_id    TEXT NOT NULL REFERENCES mailbox_deliveries(delivery_id),
    position       INTEGER NOT NULL,
    recipient_id   TEXT NOT NULL,
    sender_id      TEXT NOT NULL,
    sender_name    TEXT NOT NULL,
    delivered_at   TEXT NOT NULL,
    read_at        TEXT,
    archived_at    TEXT,
    deleted_at     TEXT,
    wrapped_key    BLOB NOT NULL,
    subject        BLOB NOT NULL,       -- AES-256-GCM
    content        BLOB NOT NULL        -- AES-256-GCM of the message JSON (body, attachments, support info)
);
CREATE INDEX mailbox_messages_recipient ON mailbox_messages(recipient_id, delivered_at DESC, id);
