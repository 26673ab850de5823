-- Delegations (decision 0019): a person (the owner) gives another person
-- (the delegate) the right to read, or to read and manage, their mail. Kept
-- by the mailbox operator, who decides who reads a mailbox; looked up on
-- every request of the delegate, so a revocation or the end of `until_date`
-- applies to the very next one. Rows are never deleted (the owner's list
-- of who read their mail names them); a revoked row keeps `revoked_at`.
CREATE TABLE delegations (
    id             TEXT PRIMARY KEY,    -- 128 random bits, base64url: in the delegate's URLs
    owner_id       TEXT NOT NULL,       -- canonical 12 digits, as mailbox_messages.recipient_id
    owner_name     TEXT NOT NULL,       -- as the owner's e-ID gave it at the grant
    delegate_id    TEXT NOT NULL,       -- canonical 12 digits
    delegate_name  TEXT,                -- as the delegate's e-ID gives it, once they used the right
    rights         TEXT NOT NULL CHECK (rights IN ('read', 'manage')),
    until_date     TEXT,                -- YYYY-MM-DD, a Swedish date, as the owner gave it
    ends_at        TEXT,                -- the end of until_date in Sweden, as an instant
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    CHECK ((until_date IS NULL) = (ends_at IS NULL)),
    CHECK (owner_id <> delegate_id)
);
CREATE INDEX delegations_owner ON delegations(owner_id, created_at);
CREATE INDEX delegations_delegate ON delegations(delegate_id, created_at);

-- A delegate's reads are audit entries whose subject is the delegation id;
-- the owner's page lists the newest of them.
CREATE INDEX audit_log_subject ON audit_log(subject, seq);
