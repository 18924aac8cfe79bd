-- OAuth 1.0a (RFC 5849; docs/architecture.md, OAuth 1.0a). A signature is checked with the
-- consumer's secret, so the server must be able to compute it: a client secret minted while
-- the server has an OAuth 1.0a key is derived from that key and `derive_nonce` (the database
-- alone does not reveal it; NULL: minted at random, usable with OAuth 2.0 only).
ALTER TABLE client_secrets ADD COLUMN derive_nonce BLOB;

-- Temporary credentials (RFC 5849 §2.1): single use, ten minutes; authorized by a UI user of
-- the application's org, who is then recorded with the digest of the verifier (§2.2).
CREATE TABLE oauth1_request_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    digest         BLOB NOT NULL UNIQUE,
    app_id         INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    callback       TEXT NOT NULL,
    scopes         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    user_id        INTEGER REFERENCES users(id) ON DELETE CASCADE,
    verifier       BLOB,
    authorized_at  INTEGER,
    used_at        INTEGER
);
CREATE INDEX oauth1_request_tokens_by_expiry ON oauth1_request_tokens(expires_at);

-- Token credentials (RFC 5849 §2.3): they belong to an account access and die with it.
CREATE TABLE oauth1_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      BLOB NOT NULL UNIQUE,
    access_id   INTEGER NOT NULL REFERENCES account_accesses(id) ON DELETE CASCADE,
    scopes      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX oauth1_tokens_by_access ON oauth1_tokens(access_id);

-- Nonces seen (RFC 5849 §3.3), per consumer and timestamp, kept while their timestamp is
-- inside the window.
CREATE TABLE oauth1_nonces (
    app_id      INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    stamp       INTEGER NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, stamp, nonce)
);
CREATE INDEX oauth1_nonces_by_expiry ON oauth1_nonces(expires_at);
