//! The audit log: an append-only record of every admin change and credential event.

use std::time::Duration;

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;
use crate::model::OrgId;

/// The action of a refused credential.
pub const AUTH_FAILED: &str = "authentication.failed";

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
    /// When set on a refusal (`authentication.failed` of an org), an event of the same org,
    /// actor, action and target recorded less than this long before `at` counts this one
    /// instead of a new event being appended (docs/architecture.md, audit aggregation). Other
    /// events are always appended.
    pub merge_within: Option<Duration>,
    /// The idempotency key of the create this event records, stored by the same
    /// transaction: a second create under the key fails as `Conflict("idempotency key")`.
    pub idempotency: Option<IdempotencyRecord>,
}

/// A create's idempotency key (docs/architecture.md, the admin API): unique per org, with
/// a digest of the request it was first used for and the target the create made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub org_id: OrgId,
    pub key: String,
    pub fingerprint: [u8; 32],
}

/// A stored idempotency key: the request it was used for and what that request made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub fingerprint: [u8; 32],
    /// The audit target of the create, e.g. `application:<client id>`.
    pub target: String,
    pub created_at: Timestamp,
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
            merge_within: None,
            idempotency: None,
        }
    }

    /// A refused credential whose org is known (`authentication.failed`). Credentials that
    /// match nothing are not recorded: they name no org, and recording them would let anyone
    /// fill the log. Refusals of one credential inside `window` (`audit.failure_window`) are
    /// one event that counts them, so repeated refusals cannot flood the log either.
    pub fn auth_failed(
        org_id: OrgId,
        at: Timestamp,
        actor: impl Into<String>,
        target: impl Into<String>,
        reason: &str,
        window: Duration,
    ) -> Self {
        let mut audit = NewAudit::new(Some(org_id), at, actor, AUTH_FAILED, target)
            .with_detail(serde_json::json!({ "reason": reason }));
        audit.merge_within = Some(window);
        audit
    }

    /// Adds `detail`'s facts to the event's (an object's keys join those already there;
    /// anything else replaces them).
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        match (&mut self.detail, detail) {
            (serde_json::Value::Object(have), serde_json::Value::Object(more)) => {
                have.extend(more);
            }
            (_, detail) => self.detail = detail,
        }
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
    /// How many occurrences this event stands for: 1, or more for refusals of one
    /// credential merged inside `audit.failure_window`.
    pub count: i64,
    /// The newest occurrence (`at` when `count` is 1).
    #[serde(serialize_with = "ser_time")]
    pub last_at: Timestamp,
}

fn ser_time<S: serde::Serializer>(t: &Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

/// Which events of an org [`AuditStore::audit_page`] returns: those matching every filter
/// that is set, strictly older than `before`, at most `limit` of them.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Actions starting with this text, e.g. `account_access.`.
    pub action_prefix: Option<String>,
    /// Events at or after this time.
    pub from: Option<Timestamp>,
    /// Events before this time.
    pub to: Option<Timestamp>,
    /// The time and id of the last event of the previous page: only events older than it in
    /// (time, id) order follow.
    pub before: Option<(Timestamp, i64)>,
    /// The most events to return.
    pub limit: u32,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event on its own (events that record a change are written by the change's
    /// own transaction instead). A refusal with [`NewAudit::merge_within`] is instead counted
    /// on the newest event of the same org, actor, action and target recorded less than that
    /// long before it, when there is one: its `count` grows by one and its `last_at` is the
    /// newest occurrence's time. Concurrent merges are counted exactly, onto one event.
    async fn record_audit(&self, audit: NewAudit) -> Result<()>;
    /// Events of `org`, oldest first, from `since` on.
    async fn audit_events(&self, org: OrgId, since: Option<Timestamp>) -> Result<Vec<AuditEvent>>;
    /// One page of `org`'s events matching `query`, newest first (by time, then by id).
    async fn audit_page(&self, org: OrgId, query: &AuditQuery) -> Result<Vec<AuditEvent>>;
    /// The create made under idempotency key `key` of `org`, if one was.
    async fn idempotent_request(&self, org: OrgId, key: &str) -> Result<Option<IdempotentRequest>>;
}
