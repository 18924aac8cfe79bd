//! The audit log ([`grantry_core::store::AuditStore`]). Records of a change are written by
//! the change's own transaction ([`super::SharedWrites::insert_audit`]).

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
    (org_id, at, actor, action, target, detail, count, last_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 1, $2)";

/// Counts a refusal at `$4` on the newest `authentication.failed` event of org `$1`, actor
/// `$2` and target `$3` recorded after `$5` (the start of the merge window); changes no row
/// when there is none. The action is written out so that both databases use the partial
/// index `audit_events_failures` (migration 0007). Callers serialize merges of one key
/// (SQLite's single writer; on PostgreSQL [`MERGE_LOCK_PG`]), so concurrent merges land on
/// one event.
pub(crate) const MERGE_AUDIT: &str = "UPDATE audit_events SET count = count + 1, \
    last_at = CASE WHEN last_at IS NULL OR last_at < $4 THEN $4 ELSE last_at END \
    WHERE id = (SELECT id FROM audit_events WHERE org_id = $1 \
    AND action = 'authentication.failed' AND actor = $2 AND target = $3 AND at > $5 \
    ORDER BY at DESC, id DESC LIMIT 1)";

/// Whether `a` is counted on an earlier event ([`MERGE_AUDIT`]) when there is one.
pub(crate) fn merges(a: &grantry_core::store::audit::NewAudit) -> Option<std::time::Duration> {
    a.merge_within
        .filter(|_| a.action == grantry_core::store::audit::AUTH_FAILED && a.org_id.is_some())
}

/// PostgreSQL: serializes the merges of one event key (`$1`) until the transaction ends.
pub(crate) const MERGE_LOCK_PG: &str = "SELECT pg_advisory_xact_lock(1735549797, hashtext($1))";

/// The key that [`MERGE_LOCK_PG`] serializes on.
pub(crate) fn merge_key(a: &grantry_core::store::audit::NewAudit) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        a.org_id.unwrap_or(0),
        a.actor,
        a.target
    )
}

/// Events of org `$1` from `$2` on, oldest first.
pub(crate) const AUDIT_OF_ORG: &str = "SELECT id, org_id, at, actor, action, target, detail, \
    count, COALESCE(last_at, at) AS last_at \
    FROM audit_events WHERE org_id = $1 AND at >= $2 ORDER BY at, id";

/// One page of org `$1`'s events, newest first: actor `$2` and actions starting with `$3`
/// when they are set (compared as a prefix, so `%` and `_` are plain characters), at or after
/// `$4` and before `$5`, older than `($6, $7)` in (time, id) order; at most `$8` of them. The
/// bounds on time are always bound (the widest when unset), so the range is searched on
/// `audit_events_by_org`.
pub(crate) const AUDIT_PAGE: &str = "SELECT id, org_id, at, actor, action, target, detail, \
    count, COALESCE(last_at, at) AS last_at FROM audit_events \
    WHERE org_id = $1 AND at >= $4 AND at < $5 AND at <= $6 AND (at < $6 OR id < $7) \
    AND ($2 IS NULL OR actor = $2) \
    AND ($3 IS NULL OR substr(action, 1, length($3)) = $3) \
    ORDER BY at DESC, id DESC LIMIT $8";

/// The idempotency key of the create that event `$4` records, in the create's transaction;
/// a second create under key `$2` of org `$1` violates its uniqueness (migration 0014).
pub(crate) const INSERT_IDEMPOTENCY_KEY: &str = "INSERT INTO idempotency_keys \
    (org_id, key, fingerprint, target, created_at) VALUES ($1, $2, $3, $4, $5)";

/// The create made under key `$2` of org `$1`.
pub(crate) const IDEMPOTENT_REQUEST: &str = "SELECT fingerprint, target, created_at \
    FROM idempotency_keys WHERE org_id = $1 AND key = $2";

/// Implements [`grantry_core::store::AuditStore`] for a [`super::Backend`].
macro_rules! impl_audit_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::model::OrgId;
            use grantry_core::store::audit::{AuditEvent, AuditQuery, IdempotentRequest, NewAudit};
            use grantry_core::store::{AuditStore, Result};
            use grantry_core::Timestamp;

            use $crate::sql::audit::*;
            use $crate::sql::rows::AuditRow;
            use $crate::sql::{backend_err, Backend};

            #[async_trait]
            impl AuditStore for $store {
                async fn record_audit(&self, audit: NewAudit) -> Result<()> {
                    self.insert_audit_event(audit).await
                }

                async fn audit_events(
                    &self,
                    org: OrgId,
                    since: Option<Timestamp>,
                ) -> Result<Vec<AuditEvent>> {
                    let rows = sqlx::query_as::<_, AuditRow>(AUDIT_OF_ORG)
                        .bind(org)
                        .bind(since.map(|t| t.0).unwrap_or(i64::MIN))
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(rows.into_iter().map(AuditEvent::from).collect())
                }

                async fn audit_page(
                    &self,
                    org: OrgId,
                    query: &AuditQuery,
                ) -> Result<Vec<AuditEvent>> {
                    let (before_at, before_id) = query
                        .before
                        .map_or((i64::MAX, i64::MAX), |(at, id)| (at.0, id));
                    let rows = sqlx::query_as::<_, AuditRow>(AUDIT_PAGE)
                        .bind(org)
                        .bind(query.actor.as_deref())
                        .bind(query.action_prefix.as_deref())
                        .bind(query.from.map_or(i64::MIN, |t| t.0))
                        .bind(query.to.map_or(i64::MAX, |t| t.0))
                        .bind(before_at)
                        .bind(before_id)
                        .bind(i64::from(query.limit))
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(rows.into_iter().map(AuditEvent::from).collect())
                }

                async fn idempotent_request(
                    &self,
                    org: OrgId,
                    key: &str,
                ) -> Result<Option<IdempotentRequest>> {
                    let row: Option<(Vec<u8>, String, i64)> = sqlx::query_as(IDEMPOTENT_REQUEST)
                        .bind(org)
                        .bind(key)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    row.map(|(fingerprint, target, at)| {
                        Ok(IdempotentRequest {
                            fingerprint: fingerprint.try_into().map_err(|_| {
                                backend_err("an idempotency key's fingerprint is not 32 bytes")
                            })?,
                            target,
                            created_at: Timestamp(at),
                        })
                    })
                    .transpose()
                }
            }
        };
    };
}

pub(crate) use impl_audit_store;
