//! The embedded SQLite backend: WAL, `synchronous=FULL`, foreign keys on. Writes go through a
//! single connection (SQLite allows one writer at a time; queuing in the pool is cheaper than
//! lock retries) and each write transaction starts `IMMEDIATE`, so a transaction never has to
//! upgrade a read lock; reads use a pool of their own and never wait for writers.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Sqlite;

use grantry_core::StoreError;

use crate::cache::{confirm, Caches, EPOCH_SQL, POLL_EVERY};
use crate::common::backend_err;
use crate::group_commit::GroupCommit;
use crate::sqlite_read::InlineReaders;

/// grantry's store on an embedded SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    caches: Arc<Caches>,
    committer: GroupCommit,
    inline: Arc<InlineReaders>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(backend_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // The pool also gates the commit thread once per batch: no ping on each checkout.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(backend_err)?;
        let committer = GroupCommit::start(path, write.clone())?;
        let inline = Arc::new(InlineReaders::open(path, 4)?);
        let caches = Caches::new();
        // The first confirmation, so the cache answers from the first request on.
        confirm(&caches, sqlx::query_scalar(EPOCH_SQL).fetch_one(&read))
            .await
            .map_err(backend_err)?;
        tokio::spawn(watch(read.clone(), Arc::downgrade(&caches)));
        Ok(SqliteStore {
            read,
            write,
            caches,
            committer,
            inline,
        })
    }

    fn caches(&self) -> &Caches {
        &self.caches
    }

    pub(crate) fn committer(&self) -> &GroupCommit {
        &self.committer
    }

    pub(crate) fn inline_reads(&self) -> &InlineReaders {
        &self.inline
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend_err)
    }

    /// Closes both pools (checkpointing the WAL).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Reads the authorization epoch every [`POLL_EVERY`] (see [`crate::cache`]), until the store
/// is closed or dropped. Other processes on the same file (the CLI, a second server) change it.
async fn watch(pool: SqlitePool, caches: Weak<Caches>) {
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        if pool.is_closed() {
            return;
        }
        let Some(caches) = caches.upgrade() else {
            return;
        };
        match confirm(&caches, sqlx::query_scalar(EPOCH_SQL).fetch_one(&pool)).await {
            Ok(()) => {}
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the authorization epoch; credential lookups bypass the cache until it can")
            }
        }
    }
}

crate::common::impl_store!(SqliteStore, sqlx::Sqlite);
