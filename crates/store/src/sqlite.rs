//! The embedded SQLite backend: WAL, `synchronous=FULL`, foreign keys on. SQLite allows one
//! writer at a time, so the store's writes queue for a sqlx pool of one connection (queuing is
//! cheaper than lock retries), each in a transaction begun `IMMEDIATE`; the hot-path writes go
//! through the commit thread instead (`group_commit.rs`). Reads use a pool of their own,
//! or on the hot paths the in-thread readers (`sqlite_read.rs`), and in WAL mode never
//! wait for writers. The crate's docs list every connection and why it exists.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, Event, List, OrgId, UserId};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Result, XmlSession,
};
use grantry_core::{StoreError, Timestamp};

use crate::cache::{confirm, Caches, EPOCH_SQL, POLL_EVERY};
use crate::group_commit::GroupCommit;
use crate::sql::{backend_err, Backend};
use crate::sqlite_hot as hot;
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
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(backend_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Checkpoints run on a thread of their own (`checkpoint.rs`); this is the backstop.
            .pragma(
                "wal_autocheckpoint",
                crate::checkpoint::BACKSTOP_PAGES.to_string(),
            );
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
            // A file-backed connection does not go stale; a ping would be one more trip to
            // the connection's thread per read (as on the write pool and on PostgreSQL's).
            .test_before_acquire(false)
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

    fn pools(&self) -> Vec<grantry_core::store::PoolStats> {
        vec![
            crate::sql::pool_stats("sqlite_read", &self.read),
            crate::sql::pool_stats("sqlite_write", &self.write),
        ]
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

impl Backend for SqliteStore {
    type Db = Sqlite;

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// `IMMEDIATE`, so the transaction never has to upgrade a read lock.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend_err)
    }

    fn caches(&self) -> &Caches {
        &self.caches
    }

    async fn load_refresh_token(&self, digest: &Digest) -> Result<Option<RefreshTokenRecord>> {
        hot::load_refresh_token(&self.inline, digest)
    }

    async fn load_newest(&self, refresh: i64) -> Result<Option<AccessTokenRecord>> {
        hot::load_newest(&self.inline, refresh)
    }

    async fn lists_of(&self, org: OrgId) -> Result<Vec<List>> {
        hot::lists_of(&self.inline, org)
    }

    async fn list_by_id(&self, org: OrgId, id: i64) -> Result<Option<List>> {
        hot::list_by_id(&self.inline, org, id)
    }

    async fn xml_session_row(
        &self,
        digest: &Digest,
        now: Timestamp,
        live_for: i64,
    ) -> Result<Option<XmlSession>> {
        hot::xml_session(&self.inline, digest, now, live_for)
    }

    async fn insert_key_token(
        &self,
        key: i64,
        org: OrgId,
        user: UserId,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> Result<i64> {
        hot::insert_key_token(&self.committer, key, org, user, token, audit).await
    }

    async fn insert_event(&self, event: Event) -> Result<()> {
        hot::insert_event(&self.committer, event).await
    }

    async fn insert_audit_event(&self, audit: NewAudit) -> Result<()> {
        hot::insert_audit_event(&self.committer, audit).await
    }

    async fn insert_nonce(
        &self,
        app: i64,
        stamp: i64,
        nonce: String,
        expires_at: Timestamp,
    ) -> Result<bool> {
        hot::insert_nonce(&self.committer, app, stamp, nonce, expires_at).await
    }

    async fn mark_used(&self, token: i64, audit: NewAudit) -> Result<()> {
        hot::mark_used(&self.committer, token, audit).await
    }

    async fn refresh_locked(
        &self,
        refresh: i64,
        decide: &DecideReissue<'_>,
        fresh: NewAccessToken,
        audit: NewAudit,
        seen: Option<i64>,
    ) -> Result<RefreshOutcome> {
        hot::refresh_locked(&self.committer, refresh, decide, fresh, audit, seen).await
    }
}

crate::sql::impl_store!(SqliteStore);
