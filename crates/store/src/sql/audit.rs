//! The audit log ([`grantry_core::store::AuditStore`]). Records of a change are written by
//! the change's own transaction ([`super::SharedWrites::insert_audit`]).

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
    (org_id, at, actor, action, target, detail, count, last_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 1, $2)";

/// Counts an occurrence at `$5` on the newest event of org `$1`, action `$2`, actor `$3` and
/// target `$4` recorded after `$6` (the start of the merge window); changes no row when
/// there is none. Callers serialize merges of one key (SQLite's single writer; on PostgreSQL
/// [`MERGE_LOCK_PG`]), so concurrent merges land on one event.
pub(crate) const MERGE_AUDIT: &str = "UPDATE audit_events SET count = count + 1, \
    last_at = CASE WHEN last_at IS NULL OR last_at < $5 THEN $5 ELSE last_at END \
    WHERE id = (SELECT id FROM audit_events WHERE org_id = $1 AND action = $2 \
    AND actor = $3 AND target = $4 AND at > $6 ORDER BY at DESC, id DESC LIMIT 1)";

/// PostgreSQL: serializes the merges of one event key (`$1`) until the transaction ends.
pub(crate) const MERGE_LOCK_PG: &str = "SELECT pg_advisory_xact_lock(1735549797, hashtext($1))";

/// The key that [`MERGE_LOCK_PG`] serializes on.
pub(crate) fn merge_key(a: &grantry_core::store::audit::NewAudit) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        a.org_id.unwrap_or(0),
        a.action,
        a.actor,
        a.target
    )
}

/// Events of org `$1` from `$2` on, oldest first.
pub(crate) const AUDIT_OF_ORG: &str = "SELECT id, org_id, at, actor, action, target, detail, \
    count, COALESCE(last_at, at) AS last_at \
    FROM audit_events WHERE org_id = $1 AND at >= $2 ORDER BY at, id";

/// Implements [`grantry_core::store::AuditStore`] for a [`super::Backend`].
macro_rules! impl_audit_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::model::OrgId;
            use grantry_core::store::audit::{AuditEvent, NewAudit};
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
            }
        };
    };
}

pub(crate) use impl_audit_store;
