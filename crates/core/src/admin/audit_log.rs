//! The audit log, as an org admin reads it.

use super::{Ctx, Result};
use crate::clock::Timestamp;
use crate::store::AuditEvent;

/// The org's audit log, oldest first, from `since` on.
pub async fn audit_log(
    cx: &Ctx<'_>,
    org: &str,
    since: Option<Timestamp>,
) -> Result<Vec<AuditEvent>> {
    let org = cx.org(org).await?;
    Ok(cx.store.audit_events(org.id, since).await?)
}
