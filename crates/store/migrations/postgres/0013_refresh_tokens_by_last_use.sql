-- An application's and an account access's last use (the console's Organization Settings)
-- is the newest `last_used_at` among the access's refresh tokens, which rotation keeps
-- adding to. With the time in the index, each is one index seek instead of a read of every
-- refresh token the access ever had; an application's accesses, revoked ones included, are
-- found by their own index, and an org's live ones by theirs, instead of a scan of every
-- org's (docs/architecture.md, the console).
DROP INDEX refresh_tokens_by_access;
CREATE INDEX refresh_tokens_by_access ON refresh_tokens(access_id, last_used_at);
CREATE INDEX account_accesses_by_app ON account_accesses(app_id);
CREATE INDEX account_accesses_live_by_org ON account_accesses(org_id, created_at) WHERE revoked_at IS NULL;
