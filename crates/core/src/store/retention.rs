//! Retention: what expired state the sweeper purges (docs/architecture.md, the sweeper).

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;

/// How long a spent authorization code is kept past its expiry, so that a late replay is
/// still recognised as reuse and revokes what the code issued (RFC 6749 §4.1.2). An unspent
/// code is purged as soon as it expires.
pub const SPENT_CODE_MEMORY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How many rows one batch of a sweep deletes; each batch is a transaction of its own, so a
/// large backlog never holds locks for long.
pub const SWEEP_BATCH: i64 = 1000;

/// What one sweep purged, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Audit events recorded before the retention limit.
    pub audit_events: u64,
    /// Unspent authorization codes past their expiry, and spent ones
    /// [`SPENT_CODE_MEMORY`] past it.
    pub auth_codes: u64,
    /// Browser sessions past their expiry.
    pub sessions: u64,
    /// Access tokens past their expiry (revoked or not).
    pub access_tokens: u64,
    /// Client secrets whose rotation overlap has ended.
    pub client_secrets: u64,
    /// OAuth 1.0a temporary credentials past their expiry.
    pub oauth1_request_tokens: u64,
    /// OAuth 1.0a nonces whose timestamp has left the window.
    pub oauth1_nonces: u64,
    /// XML API `Login` sessions idle past their limit.
    pub xml_sessions: u64,
    /// Idempotency keys of creates made more than a day ago
    /// ([`crate::admin::idempotency::KEPT_FOR`]).
    pub idempotency_keys: u64,
}

impl SweepReport {
    /// Everything purged.
    pub fn total(&self) -> u64 {
        self.audit_events
            + self.auth_codes
            + self.sessions
            + self.access_tokens
            + self.client_secrets
            + self.oauth1_request_tokens
            + self.oauth1_nonces
            + self.xml_sessions
            + self.idempotency_keys
    }
}

/// Purging expired state.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes, as of `now`: audit events recorded before `audit_before`; authorization codes
    /// that expired unspent, and spent ones that expired [`SPENT_CODE_MEMORY`] ago; browser
    /// sessions, access tokens, client secrets, OAuth 1.0a temporary credentials and nonces whose
    /// expiry has passed; XML API sessions idle past their limit; idempotency keys used
    /// [`crate::admin::idempotency::KEPT_FOR`] ago. Nothing that is
    /// still usable at `now` is deleted, and refresh tokens are never deleted (a rotated-away
    /// one is what detects reuse). Deletes in batches of [`SWEEP_BATCH`], each a transaction
    /// of its own. Returns `None` without deleting anything when another instance sharing
    /// the database is sweeping; several stores may call this at once.
    async fn sweep(&self, now: Timestamp, audit_before: Timestamp) -> Result<Option<SweepReport>>;
}
