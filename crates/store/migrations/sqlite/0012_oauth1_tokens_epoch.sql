-- OAuth 1.0a token credentials are cached like every other credential (crates/store/src/cache.rs):
-- revoking or deleting one moves the authorization epoch (migration 0005), so every instance
-- stops honouring it within one second.
CREATE TRIGGER oauth1_tokens_update_auth_epoch AFTER UPDATE OF revoked_at ON oauth1_tokens
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
CREATE TRIGGER oauth1_tokens_delete_auth_epoch AFTER DELETE ON oauth1_tokens
BEGIN
    UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1;
END;
