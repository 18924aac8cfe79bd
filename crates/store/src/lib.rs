//! sqlx implementations of [`grantry_core::Store`]: SQLite (the embedded default) and
//! PostgreSQL, picked by the URL's scheme. Both run one body of SQL, one module per storage
//! concern under `sql/`, compiled against each driver; each backend has its own migrations
//! folder. The rules both keep are in docs/architecture.md, "The storage contracts and the
//! two backends"; the cache and group commit have sections of their own there.
//!
//! # Connections
//!
//! SQLite ([`sqlite`]) opens four kinds, all on one database file in WAL mode:
//!
//! * a sqlx **read pool** (up to 8 connections) for the reads off the hot paths: a pool of
//!   their own, so reads never queue behind a write, and in WAL mode never wait for a writer;
//! * a sqlx **write pool of one connection**: SQLite admits one writer at a time, so the
//!   store's writes queue for this connection and begin `IMMEDIATE` instead of retrying on a
//!   busy lock. It also gates the commit thread: while the connection is in use or awaited,
//!   the thread takes it for its next batch, so batches cannot starve these writes;
//! * the **commit thread** of group commit (`group_commit.rs`): one read-write rusqlite
//!   connection on a thread of its own, which runs the hot writes (token issuance, first use,
//!   audit records, Event API events) of concurrent requests in one transaction and one fsync;
//! * the **in-thread readers** (`sqlite_read.rs`): 4 read-only rusqlite connections that
//!   answer the hot point reads (refresh tokens, the newest access token, lists) on the
//!   calling thread, without the hand-off to and from sqlx's connection thread, which costs
//!   more than such a read.
//!
//! PostgreSQL ([`postgres`]) opens two kinds:
//!
//! * one sqlx **pool** (up to 16 connections) for every read and write; the server groups
//!   concurrent commits into one WAL flush itself, and the serialization points take row
//!   locks;
//! * the **token batches** (`postgres_batch.rs`): up to 3 of that pool's connections at a
//!   time write the `client_credentials` tokens of concurrent requests, many per statement
//!   and per commit;
//! * the **LISTEN connection**, taken from that pool and held, on which the authorization
//!   epoch's triggers notify `grantry_auth`, so that a change committed by any instance
//!   drops this instance's credential cache at once (the cache's own rule, a poll of the
//!   epoch every 100 ms, holds without it).

use std::sync::Arc;

use grantry_core::{Store, StoreError};

mod cache;
mod checkpoint;
mod group_commit;
pub mod postgres;
mod postgres_batch;
mod postgres_hot;
mod sql;
pub mod sqlite;
mod sqlite_hot;
mod sqlite_read;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How a PostgreSQL store's connection pool is sized (`[database]`).
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// The most connections one instance opens.
    pub max_connections: u32,
    /// How long a request waits for a connection (also while the database is unreachable)
    /// before it is answered 503.
    pub acquire_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: std::time::Duration::from_secs(2),
        }
    }
}

/// Opens the store named by `url`: `sqlite://<path>` (created if missing) or
/// `postgres://...`. Runs pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, PoolSettings::default()).await
}

/// [`open`] with a PostgreSQL pool of `pool`'s size.
pub async fn open_with(url: &str, pool: PoolSettings) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect_with(url, pool).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL {}: use sqlite://<path> or postgres://user@host/db",
            redact(url)
        )))
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
