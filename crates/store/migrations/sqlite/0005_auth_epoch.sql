-- The authorization epoch: a counter that every change able to narrow what a stored
-- credential opens moves forward (revocations, deletions, grant and scope changes, user
-- disablement, key and client-secret changes). Each grantry instance caches credential
-- lookups and drops its cache when the epoch moves; it reads the epoch several times a second
-- and stops trusting its cache when it could not confirm the epoch within the last second, so
-- a change made by any process is honoured everywhere within one second. Inserts of new
-- credentials do not move it (a cache holds only what it has read).
CREATE TABLE auth_epoch (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);

CREATE TRIGGER orgs_update_auth_epoch AFTER UPDATE ON orgs
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER orgs_delete_auth_epoch AFTER DELETE ON orgs
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER users_update_auth_epoch AFTER UPDATE ON users
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER users_delete_auth_epoch AFTER DELETE ON users
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER applications_update_auth_epoch AFTER UPDATE ON applications
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER applications_delete_auth_epoch AFTER DELETE ON applications
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER client_secrets_insert_auth_epoch AFTER INSERT ON client_secrets
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER client_secrets_update_auth_epoch AFTER UPDATE ON client_secrets
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER client_secrets_delete_auth_epoch AFTER DELETE ON client_secrets
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER account_accesses_update_auth_epoch AFTER UPDATE ON account_accesses
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER account_accesses_delete_auth_epoch AFTER DELETE ON account_accesses
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER refresh_tokens_update_auth_epoch AFTER UPDATE OF revoked_at, rotated_at ON refresh_tokens
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER refresh_tokens_delete_auth_epoch AFTER DELETE ON refresh_tokens
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER access_tokens_update_auth_epoch AFTER UPDATE OF revoked_at ON access_tokens
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER access_tokens_delete_auth_epoch AFTER DELETE ON access_tokens
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_update_auth_epoch AFTER UPDATE ON api_keys
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER api_keys_delete_auth_epoch AFTER DELETE ON api_keys
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
