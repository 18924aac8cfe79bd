-- The admin console. A user whose password was set by someone else (a one-time password
-- generated at bootstrap or by an admin) must choose a new one before anything else. A
-- browser session also ends after a time without requests: `last_seen_at` is the time of its
-- latest request (NULL: none since it began at `created_at`).
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
