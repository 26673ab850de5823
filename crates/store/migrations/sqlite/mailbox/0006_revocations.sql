-- Sender keys the register has revoked, as the mailbox learned them (each
-- a statement signed by a register key the mailbox trusts, checked before
-- it is stored). A delivery signed with one of them is refused from then on.
CREATE TABLE sender_key_revocations (
    key_id      TEXT PRIMARY KEY,
    sender_id   TEXT NOT NULL,
    revoked_at  TEXT NOT NULL,
    statement   TEXT NOT NULL,   -- JSON SenderKeyRevocation
    learned_at  TEXT NOT NULL
);
