-- Authorization codes of the web-server flow (RFC 6749 §4.1): single use, short-lived; a
-- spent code remembers the refresh token it issued so that its reuse can revoke it.
CREATE TABLE auth_codes (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    digest              BLOB NOT NULL UNIQUE,
    org_id              INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    app_id              INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri        TEXT NOT NULL,
    redirect_uri_given  BOOLEAN NOT NULL,
    scopes              INTEGER NOT NULL,
    code_challenge      TEXT,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    used_at             INTEGER,
    reused_at           INTEGER,
    refresh_id          INTEGER REFERENCES refresh_tokens(id) ON DELETE SET NULL
);

-- Signed-in browser sessions (login page of the web-server flow).
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      BLOB NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
