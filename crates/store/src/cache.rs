//! The in-process cache of credential lookups, and the rule that keeps it honest.
//!
//! Every protected call, token refresh and introspection starts with the same few reads (a
//! token digest to its principal, a client id to its application and secrets, a user). They
//! are answered from memory here, so the hot paths need no database round trip.
//!
//! A cached answer may only outlive a change by less than one second, on every instance:
//!
//! * the database keeps an *authorization epoch* (migration 0005): triggers move it on every
//!   change that can narrow what a stored credential opens — revocations, deletions, grant,
//!   scope and secret changes, user disablement — whichever process makes the change;
//! * a watcher task reads the epoch every [`POLL_EVERY`] and drops the whole cache when it
//!   moved (on PostgreSQL a `LISTEN grantry_auth` connection also drops it as soon as the
//!   change commits);
//! * a cached answer is served only while the epoch was confirmed by a read that *started*
//!   less than [`TRUST_FOR`] ago. A change committed at `t` is seen by every read that starts
//!   after `t`, so from `t + TRUST_FOR` on nothing read before it is served, even if the
//!   watcher stalls: lookups then go to the database;
//! * a write made through this process reads the epoch inside its own transaction and drops
//!   the cache, if the epoch moved, before it returns (the hot writes of token issuance,
//!   first use, audit and events change nothing the triggers watch).
//!
//! A lookup that raced with a drop cannot put a stale answer back: each answer is stored under
//! the generation it was read in, and is removed again if a drop happened meanwhile.

use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use quick_cache::sync::Cache;

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, ApiKey, Application, User};
use grantry_core::store::{BearerRecord, DerivableSecret, OAuth1TokenRecord, RefreshTokenRecord};

/// How often the watcher reads the epoch.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long one confirmation of the epoch vouches for the cache (less than one second, with
/// room for the read itself).
pub(crate) const TRUST_FOR: Duration = Duration::from_millis(900);
/// Entries per map; the least recently useful are evicted beyond it.
const CAPACITY: usize = 200_000;

/// The statement the watcher runs.
pub(crate) const EPOCH_SQL: &str = "SELECT epoch FROM auth_epoch WHERE id = 1";

/// One client secret: its digest and when it stops being accepted.
pub(crate) type SecretEntry = (Digest, Option<i64>);

/// One client secret OAuth 1.0a can sign with, and when it stops being accepted.
pub(crate) type DerivableEntry = (DerivableSecret, Option<i64>);

pub(crate) struct Caches {
    base: Instant,
    /// Moves on every drop; an answer read under an older generation is not kept.
    generation: AtomicU64,
    /// When (ms since `base`, plus one) the newest confirming read of the epoch started; 0
    /// when none has.
    confirmed_at: AtomicU64,
    epoch: AtomicI64,
    pub bearer: Cache<[u8; 32], Arc<BearerRecord>>,
    pub api_keys: Cache<[u8; 32], Arc<(ApiKey, User)>>,
    pub refresh: Cache<[u8; 32], Arc<RefreshTokenRecord>>,
    pub apps: Cache<String, Arc<Application>>,
    pub secrets: Cache<i64, Arc<Vec<SecretEntry>>>,
    pub users: Cache<i64, Arc<User>>,
    /// The newest live access token of a refresh token, by refresh token id.
    pub newest: Cache<i64, Arc<AccessTokenRecord>>,
    /// OAuth 1.0a token credentials, by digest.
    pub oauth1: Cache<[u8; 32], Arc<OAuth1TokenRecord>>,
    /// The client secrets OAuth 1.0a can sign with, by application id, each with its end.
    pub derivable: Cache<i64, Arc<Vec<DerivableEntry>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("generation", &self.generation.load(SeqCst))
            .field("epoch", &self.epoch.load(SeqCst))
            .finish_non_exhaustive()
    }
}

/// Proof that a lookup started while the cache was trusted, under one generation.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl Caches {
    #[allow(
        clippy::disallowed_methods,
        reason = "the cache's trust window is measured in monotonic time, which no protocol decision reads"
    )]
    pub fn new() -> Arc<Caches> {
        Arc::new(Caches {
            // An origin in the past, so any instant worth comparing is after it.
            base: Instant::now()
                .checked_sub(Duration::from_secs(3600))
                .unwrap_or_else(Instant::now),
            generation: AtomicU64::new(0),
            confirmed_at: AtomicU64::new(0),
            epoch: AtomicI64::new(i64::MIN),
            bearer: Cache::new(CAPACITY),
            api_keys: Cache::new(CAPACITY),
            refresh: Cache::new(CAPACITY),
            apps: Cache::new(CAPACITY / 10),
            secrets: Cache::new(CAPACITY / 10),
            users: Cache::new(CAPACITY),
            newest: Cache::new(CAPACITY),
            oauth1: Cache::new(CAPACITY),
            derivable: Cache::new(CAPACITY / 10),
        })
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_millis() as u64 + 1
    }

    /// A ticket if the cache may answer now.
    #[allow(
        clippy::disallowed_methods,
        reason = "the cache's trust window is measured in monotonic time, which no protocol decision reads"
    )]
    pub fn ticket(&self) -> Option<Ticket> {
        let confirmed = self.confirmed_at.load(SeqCst);
        if confirmed == 0 || self.millis(Instant::now()) >= confirmed + TRUST_FOR.as_millis() as u64
        {
            return None;
        }
        Some(Ticket(self.generation.load(SeqCst)))
    }

    /// Keeps `value` under `key` unless the cache was dropped since `ticket` was taken.
    pub fn put<K, V>(&self, map: &Cache<K, V>, ticket: Ticket, key: K, value: V)
    where
        K: Eq + Hash + Clone,
        V: Clone,
    {
        if self.generation.load(SeqCst) != ticket.0 {
            return;
        }
        map.insert(key.clone(), value);
        if self.generation.load(SeqCst) != ticket.0 {
            map.remove(&key);
        }
    }

    /// Drops every cached answer.
    pub fn clear(&self) {
        self.generation.fetch_add(1, SeqCst);
        self.bearer.clear();
        self.api_keys.clear();
        self.refresh.clear();
        self.apps.clear();
        self.secrets.clear();
        self.users.clear();
        self.newest.clear();
        self.oauth1.clear();
        self.derivable.clear();
    }

    /// How long ago the epoch was last confirmed; `None` before the first confirmation.
    #[allow(
        clippy::disallowed_methods,
        reason = "the cache's trust window is measured in monotonic time, which no protocol decision reads"
    )]
    pub fn confirmed_ago(&self) -> Option<Duration> {
        let confirmed = self.confirmed_at.load(SeqCst);
        (confirmed != 0)
            .then(|| Duration::from_millis(self.millis(Instant::now()).saturating_sub(confirmed)))
    }

    /// Records the epoch read by a poll that started at `started`: drops the cache if it
    /// moved, then lets the cache answer for [`TRUST_FOR`] from `started`.
    pub fn observe(&self, epoch: i64, started: Instant) {
        if self.epoch.swap(epoch, SeqCst) != epoch {
            self.clear();
        }
        self.confirmed_at.fetch_max(self.millis(started), SeqCst);
    }
}

/// Runs `read` (a read of the epoch) and records what it found as a confirmation taken when the
/// read started.
#[allow(
    clippy::disallowed_methods,
    reason = "the cache's trust window is measured in monotonic time, which no protocol decision reads"
)]
pub(crate) async fn confirm<E>(
    caches: &Caches,
    read: impl std::future::Future<Output = Result<i64, E>>,
) -> Result<(), E> {
    let started = Instant::now();
    let epoch = read.await?;
    caches.observe(epoch, started);
    Ok(())
}

/// Answers from `map` when the cache may, else runs `load` and keeps what it found.
pub(crate) async fn cached<K, V, E, F, Fut>(
    caches: &Caches,
    name: &'static str,
    map: &Cache<K, V>,
    key: K,
    load: F,
) -> Result<Option<V>, E>
where
    K: Eq + Hash + Clone,
    V: Clone,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<V>, E>>,
{
    let Some(ticket) = caches.ticket() else {
        looked_up(name, "untrusted");
        return load().await;
    };
    if let Some(v) = map.get(&key) {
        looked_up(name, "hit");
        return Ok(Some(v));
    }
    looked_up(name, "miss");
    let found = load().await?;
    if let Some(v) = &found {
        caches.put(map, ticket, key, v.clone());
    }
    Ok(found)
}

/// Counts a lookup in cache `name`: answered from it, missed, or read from the database
/// because the epoch was not confirmed within [`TRUST_FOR`].
fn looked_up(name: &'static str, result: &'static str) {
    metrics::counter!("grantry_credential_cache_lookups_total", "cache" => name, "result" => result)
        .increment(1);
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the tests drive the trust window itself"
)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_until_confirmed_and_dropped_when_the_epoch_moves() {
        let c = Caches::new();
        assert!(c.ticket().is_none(), "no confirmation yet");
        c.observe(7, Instant::now());
        let t = c.ticket().expect("confirmed just now");
        c.put(&c.users, t, 1, Arc::new(test_user()));
        assert!(c.users.get(&1).is_some());
        c.observe(7, Instant::now());
        assert!(c.users.get(&1).is_some(), "same epoch keeps entries");
        c.observe(8, Instant::now());
        assert!(c.users.get(&1).is_none(), "a moved epoch drops entries");
    }

    #[test]
    fn a_stale_confirmation_stops_the_cache() {
        let c = Caches::new();
        c.observe(1, Instant::now() - TRUST_FOR);
        assert!(c.ticket().is_none());
        c.observe(1, Instant::now());
        assert!(c.ticket().is_some());
    }

    #[test]
    fn an_answer_read_before_a_drop_is_not_kept() {
        let c = Caches::new();
        c.observe(1, Instant::now());
        let t = c.ticket().unwrap();
        c.clear();
        c.put(&c.users, t, 1, Arc::new(test_user()));
        assert!(c.users.get(&1).is_none());
    }

    fn test_user() -> User {
        User {
            id: 1,
            org_id: 1,
            username: "u".into(),
            email: "u@example.com".into(),
            kind: grantry_core::model::UserKind::Api,
            role: grantry_core::model::Role::User,
            grants: grantry_core::GrantSet::empty(),
            key_id: None,
            principal: false,
            disabled: false,
            must_change_password: false,
            created_at: grantry_core::Timestamp(0),
        }
    }
}
