-- Failed authentications per subject (an account, a client or a key, as the caller named
-- it), for lockout with exponential back-off (docs/architecture.md, limits). Shared by every
-- instance on the same database, so a count holds across them; each instance mirrors the
-- live locks (locked_until in the future) into memory about twice a second.
CREATE TABLE auth_failures (
    subject       TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    last_failure  BIGINT NOT NULL,
    locked_until  BIGINT
);
CREATE INDEX auth_failures_locked ON auth_failures (locked_until);
