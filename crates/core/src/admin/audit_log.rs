//! The audit log, as an org admin reads it.

use super::{Ctx, Result};
use crate::clock::Timestamp;
use crate::store::{AuditEvent, AuditQuery};

/// The org's audit log, oldest first, from `since` on.
pub async fn audit_log(
    cx: &Ctx<'_>,
    org: &str,
    since: Option<Timestamp>,
) -> Result<Vec<AuditEvent>> {
    let org = cx.org(org).await?;
    Ok(cx.store.audit_events(org.id, since).await?)
}

/// One page of the org's audit log, newest first, filtered by `query` (its `before` is the
/// last event of the previous page).
/// A filter with text no backend stores (a NUL) matches nothing, and is not sent to one.
pub async fn audit_page(cx: &Ctx<'_>, org: &str, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
    let org = cx.org(org).await?;
    let filters = [query.actor.as_deref(), query.action_prefix.as_deref()];
    if !filters.into_iter().flatten().all(crate::validate::storable) {
        return Ok(Vec::new());
    }
    Ok(cx.store.audit_page(org.id, query).await?)
}
