-- The admin console. A user whose password was set by someone else (a one-time password
-- generated at bootstrap or by an admin) must choose a new one before anything else. A
-- browser session also ends after a time without requests: `last_seen_at` is the time of its
-- latest request (NULL: none since it began at `created_at`).
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
-- When an API secret key was last used, to the minute: written at most once a minute per key
-- and instance (docs/architecture.md, the console). Recording a use narrows nothing, so the
-- authorization epoch moves only when a key's slot or grace changes.
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
DROP TRIGGER api_keys_update_auth_epoch ON api_keys;
CREATE TRIGGER api_keys_update_auth_epoch AFTER UPDATE OF slot, digest, deleted_at, stops_at ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
