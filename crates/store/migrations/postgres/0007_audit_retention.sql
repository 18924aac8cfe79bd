-- Audit aggregation and retention (docs/architecture.md, audit aggregation and the sweeper).
-- Refused authentications of one credential inside audit.failure_window are one event that
-- counts them: `count` occurrences, the newest at `last_at`. The sweeper purges by time, so
-- each table it purges gets an index on the time it purges by.
ALTER TABLE audit_events ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN last_at BIGINT;
UPDATE audit_events SET last_at = at;
CREATE INDEX audit_events_failures ON audit_events(org_id, actor, target, at)
    WHERE action = 'authentication.failed';
CREATE INDEX audit_events_by_at ON audit_events(at);
CREATE INDEX auth_codes_by_expiry ON auth_codes(expires_at);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
CREATE INDEX access_tokens_by_expiry ON access_tokens(expires_at);
CREATE INDEX client_secrets_by_expiry ON client_secrets(expires_at) WHERE expires_at IS NOT NULL;
