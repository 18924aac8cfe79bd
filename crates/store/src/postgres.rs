//! The PostgreSQL backend, for when one machine is not enough: any number of `grantry serve`
//! instances share one database. Serialization points (the re-issue window) take row locks.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Postgres;

use grantry_core::StoreError;

use crate::common::backend_err;

/// grantry's store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
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
        Ok(PgStore { pool })
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

crate::common::impl_store!(PgStore, sqlx::Postgres);
