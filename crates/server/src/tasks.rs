//! Work the server does on a schedule rather than inside requests.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::oauth::jwt::ensure_keys;
use grantry_core::store::SweepReport;
use grantry_core::{Clock, Settings, Store};

use crate::guard::Guard;

/// How often the JWT signing keys are looked after.
pub const KEY_ROUND: Duration = Duration::from_secs(600);

/// Keeps a JWT signing key active and its successor published a whole rotation period ahead
/// (RFC 9068 tokens; docs/architecture.md, OAuth 2.0 surface), one round every
/// [`KEY_ROUND`], reading the clock once per round. RSA keys are made here, never inside a
/// token request. Instances sharing a database may each add a successor in the same round;
/// every successor is published a period ahead, so whichever signs was published first.
pub async fn keep_signing_keys(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rotate_every: Duration,
) {
    let mut tick = tokio::time::interval(KEY_ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = ensure_keys(&*store, clock.now(), rotate_every).await {
            tracing::warn!(error = %e, "cannot prepare the JWT signing keys; retrying next round");
        }
    }
}

/// How often each instance mirrors the store's live lockouts (docs/architecture.md, limits):
/// twice a second, so a lock set anywhere holds here within one second.
pub const LOCKOUT_ROUND: Duration = Duration::from_millis(500);

/// Mirrors the live lockouts into `guard` every [`LOCKOUT_ROUND`].
pub async fn mirror_lockouts(guard: Arc<Guard>) {
    let mut tick = tokio::time::interval(LOCKOUT_ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = guard.refresh().await {
            tracing::warn!(error = %e, "cannot read the lockouts; retrying next round");
        }
    }
}

/// How often expired state is purged.
pub const SWEEP_ROUND: Duration = Duration::from_secs(600);

/// Purges expired state once at start and then every [`SWEEP_ROUND`] (docs/architecture.md,
/// the sweeper), reading the clock once per round: audit events older than `retention`, and
/// the expired codes, sessions, access tokens and client secrets
/// ([`grantry_core::store::RetentionStore::sweep`]), and failure counts older than `limits.failure_memory`
/// ([`grantry_core::store::LockoutStore::purge_failures`]). Instances sharing a PostgreSQL database skip a round
/// another instance is sweeping.
pub async fn sweep_expired(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Arc<Settings>) {
    let mut tick = tokio::time::interval(SWEEP_ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sweep_once(&*store, &*clock, &settings).await;
    }
}

/// One round of [`sweep_expired`]; what it purged, when it ran and did not fail.
pub async fn sweep_once(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &Settings,
) -> Option<SweepReport> {
    let now = clock.now();
    let swept = store.sweep(now, now.minus(settings.audit.retention)).await;
    if matches!(swept, Ok(Some(_))) {
        let before = now.minus(settings.limits.failure_memory);
        if let Err(e) = store.purge_failures(before).await {
            tracing::warn!(error = %e, "cannot forget old failure counts; retrying next round");
        }
    }
    match swept {
        Ok(Some(r)) => {
            if r.total() > 0 {
                tracing::info!(
                    audit_events = r.audit_events,
                    auth_codes = r.auth_codes,
                    sessions = r.sessions,
                    access_tokens = r.access_tokens,
                    client_secrets = r.client_secrets,
                    "purged expired state"
                );
            }
            Some(r)
        }
        Ok(None) => {
            tracing::debug!("another instance is purging expired state; skipping this round");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot purge expired state; retrying next round");
            None
        }
    }
}
