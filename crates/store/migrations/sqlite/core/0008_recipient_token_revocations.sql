-- Recipient tokens revoked before their expiry (kuvert token revoke). The
-- register checks each registration token's id here on every request. A row
-- can go once expires_at has passed: no token with this id is valid then.
CREATE TABLE revoked_recipient_tokens (
    token_id    TEXT PRIMARY KEY,
    revoked_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
