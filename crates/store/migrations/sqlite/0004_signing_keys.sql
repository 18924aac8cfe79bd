-- RS256 keys for JWT access tokens (RFC 9068). A key is published from its creation and
-- signs from active_from on.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_der  BLOB NOT NULL,
    n            TEXT NOT NULL,
    e            TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    active_from  INTEGER NOT NULL
);
