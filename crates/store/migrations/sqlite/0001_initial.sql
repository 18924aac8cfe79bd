-- grantry schema, SQLite. Times are milliseconds since the Unix epoch; credentials are
-- stored only as SHA-256 digests.
CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('ui', 'api')),
    role          TEXT NOT NULL CHECK (role IN ('org_admin', 'user')),
    grants        INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT,
    key_id        TEXT UNIQUE,
    principal     BOOLEAN NOT NULL DEFAULT 0,
    disabled_at   INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (org_id, username)
);
CREATE UNIQUE INDEX users_one_principal_per_org ON users(org_id) WHERE principal;

CREATE TABLE applications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    scopes        INTEGER NOT NULL,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    public        BOOLEAN NOT NULL DEFAULT 0,
    rotate_refresh_tokens BOOLEAN NOT NULL DEFAULT 0,
    token_format  TEXT NOT NULL DEFAULT 'opaque' CHECK (token_format IN ('opaque', 'jwt')),
    created_at    INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE client_secrets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    digest      BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX client_secrets_by_app ON client_secrets(app_id);

CREATE TABLE account_accesses (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    app_id          INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    scopes          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);
CREATE UNIQUE INDEX account_accesses_live ON account_accesses(app_id, user_id) WHERE revoked_at IS NULL;

-- Refresh tokens of an account access: the one an admin hands out, and one per consent in the
-- web-server flow. A rotated token points at its family's first token.
CREATE TABLE refresh_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    access_id     INTEGER NOT NULL REFERENCES account_accesses(id) ON DELETE CASCADE,
    digest        BLOB NOT NULL UNIQUE,
    scopes        INTEGER NOT NULL,
    family_id     INTEGER,
    parent_id     INTEGER REFERENCES refresh_tokens(id) ON DELETE CASCADE,
    derive_nonce  BLOB,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    rotated_at    INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX refresh_tokens_by_access ON refresh_tokens(access_id);

CREATE TABLE access_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id        INTEGER REFERENCES applications(id) ON DELETE CASCADE,
    access_id     INTEGER REFERENCES account_accesses(id) ON DELETE CASCADE,
    refresh_id    INTEGER REFERENCES refresh_tokens(id) ON DELETE CASCADE,
    digest        BLOB NOT NULL UNIQUE,
    nonce         BLOB NOT NULL,
    scopes        INTEGER NOT NULL,
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    first_used_at INTEGER,
    kid           TEXT
);
CREATE INDEX access_tokens_by_access ON access_tokens(access_id);
CREATE INDEX access_tokens_by_refresh ON access_tokens(refresh_id, issued_at);

CREATE TABLE audit_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id  INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT 'null'
);
CREATE INDEX audit_events_by_org ON audit_events(org_id, at);

CREATE TABLE lists (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    list_id     INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    email_norm  TEXT NOT NULL,
    columns     TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (list_id, email_norm)
);
