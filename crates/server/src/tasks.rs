//! Work the server does on a schedule rather than inside requests.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::oauth::jwt::ensure_keys;
use grantry_core::{Clock, Store};

use crate::limits::Guard;

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

/// Rounds between purges of failure counts older than `limits.failure_memory`.
const PURGE_EVERY: u32 = 1200;

/// Mirrors the live lockouts into `guard` every [`LOCKOUT_ROUND`], and forgets stale
/// failure counts every ten minutes.
pub async fn mirror_lockouts(guard: Arc<Guard>) {
    let mut tick = tokio::time::interval(LOCKOUT_ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: u32 = 0;
    loop {
        tick.tick().await;
        let purge = round.is_multiple_of(PURGE_EVERY);
        round = round.wrapping_add(1);
        if let Err(e) = guard.refresh(purge).await {
            tracing::warn!(error = %e, "cannot read the lockouts; retrying next round");
        }
    }
}
