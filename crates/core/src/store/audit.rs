//! The audit log: an append-only record of every admin change and credential event.

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;
use crate::model::OrgId;

/// An event to append; written in the same transaction as the change it records.
#[derive(Clone, Debug)]
pub struct NewAudit {
    pub org_id: Option<OrgId>,
    pub at: Timestamp,
    /// Who did it: a username, `cli`, `system`, or a client id.
    pub actor: String,
    /// What happened, e.g. `account_access.created`.
    pub action: &'static str,
    /// What it happened to, e.g. `application:<client id>/user:<username>`.
    pub target: String,
    /// Extra facts; never a secret.
    pub detail: serde_json::Value,
}

impl NewAudit {
    pub fn new(
        org_id: Option<OrgId>,
        at: Timestamp,
        actor: impl Into<String>,
        action: &'static str,
        target: impl Into<String>,
    ) -> Self {
        NewAudit {
            org_id,
            at,
            actor: actor.into(),
            action,
            target: target.into(),
            detail: serde_json::Value::Null,
        }
    }

    /// A refused credential whose org is known (`authentication.failed`). Credentials that
    /// match nothing are not recorded: they name no org, and recording them would let anyone
    /// fill the log.
    pub fn auth_failed(
        org_id: OrgId,
        at: Timestamp,
        actor: impl Into<String>,
        target: impl Into<String>,
        reason: &str,
    ) -> Self {
        NewAudit::new(Some(org_id), at, actor, "authentication.failed", target)
            .with_detail(serde_json::json!({ "reason": reason }))
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A stored audit event.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEvent {
    pub id: i64,
    #[serde(skip)]
    pub org_id: Option<OrgId>,
    #[serde(serialize_with = "ser_time")]
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

fn ser_time<S: serde::Serializer>(t: &Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event on its own (events that record a change are written by the change's
    /// own transaction instead).
    async fn record_audit(&self, audit: NewAudit) -> Result<()>;
    /// Events of `org`, oldest first, from `since` on.
    async fn audit_events(&self, org: OrgId, since: Option<Timestamp>) -> Result<Vec<AuditEvent>>;
}
