-- e-ID login (issue 18, decision 0018): server-side web sessions and the
-- logins under way, in the core database so that every node sees them.
-- Only the SHA-256 of a cookie's random id is stored: a copy of this table
-- logs no one in. Instants are Unix seconds (compared, never shown).
CREATE TABLE web_sessions (
    id_hash      BLOB PRIMARY KEY,
    -- The canonical 12 digits, parsed from the provider's claim.
    recipient    TEXT NOT NULL,
    given_name   TEXT NOT NULL,
    family_name  TEXT NOT NULL,
    -- The level of assurance of the login (`loa3`, `loa4`, ...).
    loa          TEXT NOT NULL,
    -- The session's CSRF token, sent back in every form.
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Pruning deletes by either instant (an OR SQLite answers from both).
CREATE INDEX web_sessions_by_last_seen ON web_sessions (last_seen_at);
CREATE INDEX web_sessions_by_created ON web_sessions (created_at);

-- A login started at /login and not yet come back: bound to the
-- pre-login cookie (its hash), taken once by the callback.
CREATE TABLE pending_logins (
    id_hash       BLOB PRIMARY KEY,
    state         TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX pending_logins_by_created ON pending_logins (created_at);
