-- API users' secret keys (two live slots, deleted keys kept through their grace period) and
-- the Event API's events.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    slot        INTEGER CHECK (slot IN (1, 2)),
    digest      BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    stops_at    INTEGER
);
CREATE UNIQUE INDEX api_keys_live_slot ON api_keys(user_id, slot) WHERE slot IS NOT NULL;

ALTER TABLE access_tokens ADD COLUMN api_key_id INTEGER REFERENCES api_keys(id) ON DELETE CASCADE;

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  TEXT NOT NULL UNIQUE,
    org_id          INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    event_id        TEXT NOT NULL,
    event_key       TEXT NOT NULL,
    params          TEXT NOT NULL,
    received_at     INTEGER NOT NULL
);
CREATE INDEX events_by_org ON events(org_id, received_at);
