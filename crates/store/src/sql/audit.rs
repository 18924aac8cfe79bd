//! The audit log ([`grantry_core::store::AuditStore`]). Records of a change are written by
//! the change's own transaction ([`super::SharedWrites::insert_audit`]).

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
    (org_id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)";

/// Events of org `$1` from `$2` on, oldest first.
pub(crate) const AUDIT_OF_ORG: &str = "SELECT id, org_id, at, actor, action, target, detail \
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
