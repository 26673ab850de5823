-- Checkpoints v2 (decision 0010): the database names its own audit log (a
-- random id made once, with its kind), and each checkpoint signs that log
-- id and the digest of the checkpoint before it. The witness's
-- countersignature is kept beside the checkpoint it covers.
CREATE TABLE audit_log_identity (
    only       INTEGER PRIMARY KEY CHECK (only = 1),
    log_id     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Rows signed before this migration keep the v1 form ("{seq}:{hash}").
ALTER TABLE audit_checkpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'kuvert-audit-checkpoint-v1';
ALTER TABLE audit_checkpoints ADD COLUMN log_id TEXT;
ALTER TABLE audit_checkpoints ADD COLUMN prev_digest TEXT;
-- The witness's cosignature (JSON), once it has countersigned.
ALTER TABLE audit_checkpoints ADD COLUMN cosignature TEXT;
