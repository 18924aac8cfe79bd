-- The XML API's `Login` sessions (docs/architecture.md, XML API sessions): stored by the
-- SHA-256 digest of their id, with the API user and the secret key that opened them. Deleting
-- the user or purging the key ends its sessions. `last_seen_at` is the latest recorded call,
-- written at most once per touch interval. `live_for` (milliseconds) is how long past
-- `last_seen_at` it stays live as of its start, for the sweeper.
CREATE TABLE xml_sessions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest        BLOB NOT NULL UNIQUE,
    org_id        INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    api_key_id    INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    live_for      INTEGER NOT NULL
);
CREATE INDEX xml_sessions_org_seen ON xml_sessions (org_id, last_seen_at);
CREATE INDEX xml_sessions_seen ON xml_sessions (last_seen_at);
