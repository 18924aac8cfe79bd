-- The sweeper purges access tokens and audit events in the order they were written (their
-- ids), up to the first row that is still live (docs/architecture.md, the sweeper), so the
-- two tables every durable issuance writes carry no index on time for it.
DROP INDEX access_tokens_by_expiry;
DROP INDEX audit_events_by_at;
