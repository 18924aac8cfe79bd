//! The PostgreSQL backend, for when one machine is not enough: any number of `grantry serve`
//! instances share one database. Serialization points (the re-issue window) take row locks.

use std::sync::{Arc, Weak};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, Event, List, OrgId, UserId};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Result, XmlSession,
};
use grantry_core::{StoreError, Timestamp};

use crate::cache::{confirm, Caches, EPOCH_SQL, POLL_EVERY};
use crate::postgres_batch::KeyTokens;
use crate::postgres_hot as hot;
use crate::sql::{backend_err, Backend};

/// The channel the authorization-epoch triggers notify (migration 0005).
const CHANNEL: &str = "grantry_auth";

/// grantry's store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    caches: Arc<Caches>,
    key_tokens: KeyTokens,
}

impl PgStore {
    /// Connects to `url` and runs migrations (under PostgreSQL's advisory lock, so several
    /// instances may start at once).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, crate::PoolSettings::default()).await
    }

    /// [`PgStore::connect`] with a pool of `settings`' size.
    pub async fn connect_with(url: &str, settings: crate::PoolSettings) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // No ping before each use: it was a second round trip on every query of the hot
            // path. A connection the server dropped fails its next query once (503 with
            // Retry-After) and is replaced (docs/architecture.md, "Database faults").
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("cannot connect to {}: {e}", crate::redact(url)))
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", crate::redact(url))))?;
        let caches = Caches::new();
        // Listen before the first confirmation, so no change can fall between the two.
        let listener = match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN {CHANNEL} failed; relying on polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a LISTEN connection; relying on polling");
                None
            }
        };
        confirm(&caches, sqlx::query_scalar(EPOCH_SQL).fetch_one(&pool))
            .await
            .map_err(backend_err)?;
        tokio::spawn(watch(pool.clone(), listener, Arc::downgrade(&caches)));
        let key_tokens = KeyTokens::start(pool.clone());
        Ok(PgStore {
            pool,
            caches,
            key_tokens,
        })
    }

    fn pools(&self) -> Vec<grantry_core::store::PoolStats> {
        vec![crate::sql::pool_stats("postgres", &self.pool)]
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Keeps the cache honest (see [`crate::cache`]): drops it on every `grantry_auth`
/// notification, and reads the epoch every [`POLL_EVERY`] as the guarantee, until the store is
/// closed or dropped.
async fn watch(pool: PgPool, mut listener: Option<PgListener>, caches: Weak<Caches>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let notified = async {
            match listener.as_mut() {
                // `recv` reconnects by itself; an error here is worth one log line.
                Some(l) => l.try_recv().await.map(|n| n.is_some()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = notified => {
                if pool.is_closed() {
                    return;
                }
                let Some(caches) = caches.upgrade() else { return };
                match n {
                    Ok(_) => caches.clear(),
                    Err(e) => {
                        caches.clear();
                        tracing::warn!(error = %e, "LISTEN {CHANNEL} connection lost; reconnecting");
                        drop(caches);
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }
            _ = tick.tick() => {
                if pool.is_closed() {
                    return;
                }
                let Some(caches) = caches.upgrade() else { return };
                match confirm(&caches, sqlx::query_scalar(EPOCH_SQL).fetch_one(&pool)).await {
                    Ok(()) => {}
                    Err(_) if pool.is_closed() => return,
                    Err(e) => tracing::warn!(error = %e, "cannot read the authorization epoch; credential lookups bypass the cache until it can"),
                }
            }
        }
    }
}

impl Backend for PgStore {
    type Db = Postgres;

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(backend_err)
    }

    fn caches(&self) -> &Caches {
        &self.caches
    }

    async fn load_refresh_token(&self, digest: &Digest) -> Result<Option<RefreshTokenRecord>> {
        hot::load_refresh_token(&self.pool, digest).await
    }

    async fn load_newest(&self, refresh: i64) -> Result<Option<AccessTokenRecord>> {
        hot::load_newest(&self.pool, refresh).await
    }

    async fn lists_of(&self, org: OrgId) -> Result<Vec<List>> {
        hot::lists_of(&self.pool, org).await
    }

    async fn list_by_id(&self, org: OrgId, id: i64) -> Result<Option<List>> {
        hot::list_by_id(&self.pool, org, id).await
    }

    async fn xml_session_row(
        &self,
        digest: &Digest,
        now: Timestamp,
        live_for: i64,
    ) -> Result<Option<XmlSession>> {
        hot::xml_session(&self.pool, digest, now, live_for).await
    }

    async fn insert_key_token(
        &self,
        key: i64,
        org: OrgId,
        user: UserId,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> Result<i64> {
        self.key_tokens.insert(key, org, user, token, audit).await
    }

    async fn insert_event(&self, event: Event) -> Result<()> {
        hot::insert_event(&self.pool, event).await
    }

    async fn insert_nonce(
        &self,
        app: i64,
        stamp: i64,
        nonce: String,
        expires_at: Timestamp,
    ) -> Result<bool> {
        hot::insert_nonce(&self.pool, app, stamp, nonce, expires_at).await
    }

    async fn insert_audit_event(&self, audit: NewAudit) -> Result<()> {
        hot::insert_audit_event(&self.pool, audit).await
    }

    async fn mark_used(&self, token: i64, audit: NewAudit) -> Result<()> {
        hot::mark_used(&self.pool, token, audit).await
    }

    /// Serialized by the refresh token's row lock; `seen` is not needed, as `decide` runs
    /// again under the lock.
    async fn refresh_locked(
        &self,
        refresh: i64,
        decide: &DecideReissue<'_>,
        fresh: NewAccessToken,
        audit: NewAudit,
        _seen: Option<i64>,
    ) -> Result<RefreshOutcome> {
        hot::refresh_locked(&self.pool, refresh, decide, fresh, audit).await
    }
}

crate::sql::impl_store!(PgStore);
