-- The authorization epoch: a counter that every change able to narrow what a stored
-- credential opens moves forward (revocations, deletions, grant and scope changes, user
-- disablement, key and client-secret changes). Each grantry instance caches credential
-- lookups and drops its cache when the epoch moves; it reads the epoch several times a second
-- and stops trusting its cache when it could not confirm the epoch within the last second, so
-- a change made by any process is honoured everywhere within one second. Inserts of new
-- credentials do not move it (a cache holds only what it has read).
-- PostgreSQL also announces each move on the channel grantry_auth (LISTEN/NOTIFY), so other
-- instances usually drop their caches at once; the poll remains the guarantee.
CREATE TABLE auth_epoch (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  BIGINT NOT NULL
);
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);

CREATE FUNCTION grantry_auth_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
    PERFORM pg_notify('grantry_auth', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER orgs_update_auth_epoch AFTER UPDATE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER orgs_delete_auth_epoch AFTER DELETE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER users_update_auth_epoch AFTER UPDATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER users_delete_auth_epoch AFTER DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER applications_update_auth_epoch AFTER UPDATE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER applications_delete_auth_epoch AFTER DELETE ON applications
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER client_secrets_insert_auth_epoch AFTER INSERT ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER client_secrets_update_auth_epoch AFTER UPDATE ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER client_secrets_delete_auth_epoch AFTER DELETE ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER account_accesses_update_auth_epoch AFTER UPDATE ON account_accesses
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER account_accesses_delete_auth_epoch AFTER DELETE ON account_accesses
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER refresh_tokens_update_auth_epoch AFTER UPDATE OF revoked_at, rotated_at ON refresh_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER refresh_tokens_delete_auth_epoch AFTER DELETE ON refresh_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER access_tokens_update_auth_epoch AFTER UPDATE OF revoked_at ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER access_tokens_delete_auth_epoch AFTER DELETE ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER api_keys_update_auth_epoch AFTER UPDATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
CREATE TRIGGER api_keys_delete_auth_epoch AFTER DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION grantry_auth_epoch_bump();
