//! The PostgreSQL backend, for when one machine is not enough: any number of `grantry serve`
//! instances share one database. Serialization points (the re-issue window) take row locks.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Postgres;

use grantry_core::StoreError;

use crate::cache::{Caches, EPOCH_SQL, POLL_EVERY};
use crate::common::backend_err;

/// The channel the authorization-epoch triggers notify (migration 0005).
const CHANNEL: &str = "grantry_auth";

/// grantry's store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    caches: Arc<Caches>,
}

impl PgStore {
    /// Connects to `url` and runs migrations (under PostgreSQL's advisory lock, so several
    /// instances may start at once).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
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
        let started = Instant::now();
        let epoch = sqlx::query_scalar::<_, i64>(EPOCH_SQL)
            .fetch_one(&pool)
            .await
            .map_err(backend_err)?;
        caches.observe(epoch, started);
        tokio::spawn(watch(pool.clone(), listener, Arc::downgrade(&caches)));
        Ok(PgStore { pool, caches })
    }

    fn caches(&self) -> &Caches {
        &self.caches
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(backend_err)
    }

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
                let started = Instant::now();
                let epoch = sqlx::query_scalar::<_, i64>(EPOCH_SQL).fetch_one(&pool).await;
                let Some(caches) = caches.upgrade() else { return };
                match epoch {
                    Ok(epoch) => caches.observe(epoch, started),
                    Err(_) if pool.is_closed() => return,
                    Err(e) => tracing::warn!(error = %e, "cannot read the authorization epoch; credential lookups bypass the cache until it can"),
                }
            }
        }
    }
}

crate::common::impl_store!(PgStore, sqlx::Postgres);
