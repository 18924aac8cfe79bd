//! The SQL both backends share, one module per storage concern of [`grantry_core::store`].
//!
//! Every statement is a named `const`, written once with `$N` placeholders (both drivers
//! accept them) and checked by each driver: a concern's trait implementation is a
//! `macro_rules!` macro that [`impl_store!`] expands once per backend, so each expansion is
//! type-checked against its own sqlx driver. Generic functions over `sqlx::Database` would
//! need the `Encode`/`Type`/`Decode` bounds of every bound and read type, and an executor
//! bound, on every function; sqlx's `Any` driver would give up the per-driver checks.
//!
//! What differs between the backends is [`Backend`]; the few writes several concerns run
//! inside their own transactions are [`SharedWrites`], implemented for each driver from one
//! text. Rows are mapped by the `FromRow` structs of [`rows`]. The rules every statement here
//! keeps are in docs/architecture.md, "The storage contracts and the two backends".

use std::future::Future;

use sqlx::{Database, Pool, Transaction};

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, Event, List, OrgId, UserId};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Result, XmlSession,
};
use grantry_core::{StoreError, Timestamp};

use crate::cache::{Caches, EPOCH_SQL};

pub(crate) mod account_access;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod clients;
pub(crate) mod data;
pub(crate) mod directory;
pub(crate) mod events;
pub(crate) mod lockouts;
pub(crate) mod oauth1;
pub(crate) mod retention;
pub(crate) mod rows;
pub(crate) mod sessions;
pub(crate) mod signing_keys;
pub(crate) mod tokens;
pub(crate) mod xml_sessions;

/// The liveness probe.
pub(crate) const PING: &str = "SELECT 1";

/// Console sessions and XML API sessions live at `$1`.
pub(crate) const LIVE_SESSIONS: &str = "SELECT \
    (SELECT COUNT(*) FROM sessions WHERE expires_at > $1), \
    (SELECT COUNT(*) FROM xml_sessions WHERE last_seen_at + live_for >= $1)";

/// A pool's figures for [`grantry_core::store::StoreStats`].
pub(crate) fn pool_stats<DB: sqlx::Database>(
    name: &'static str,
    pool: &Pool<DB>,
) -> grantry_core::store::PoolStats {
    grantry_core::store::PoolStats {
        name,
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

/// Any driver error, for logs; never shown to clients. Unavailability (see [`Cause`]) is told
/// apart from faults, so clients get 503 and a retry rather than 500.
pub(crate) fn backend_err(e: impl Cause) -> StoreError {
    if e.unavailable() {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// An error a backend call failed with, and whether it means the database is unavailable.
pub(crate) trait Cause: std::fmt::Display {
    fn unavailable(&self) -> bool {
        false
    }
}

impl Cause for sqlx::Error {
    fn unavailable(&self) -> bool {
        match self {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => {
                let code = d.code();
                let code = code.as_deref().unwrap_or("");
                if d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    pg_unavailable(code)
                } else {
                    code.parse().is_ok_and(sqlite_unavailable)
                }
            }
            _ => false,
        }
    }
}

impl Cause for sqlx::migrate::MigrateError {}
impl Cause for String {}
impl Cause for &str {}
impl Cause for std::num::TryFromIntError {}
impl Cause for serde_json::Error {}

/// PostgreSQL SQLSTATEs that mean "not now": class 08 (connection exception), 53
/// (insufficient resources: disk full, out of memory, too many connections), 57P01-57P05
/// (shutdown, crash, cannot connect now, idle timeouts), 25006 (a read-only transaction: a
/// standby), and 40001/40P01 (serialization failure, deadlock: the transaction was undone).
fn pg_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "25006" | "40001" | "40P01")
}

/// SQLite result codes (the primary code is the low byte of an extended one) that mean "not
/// now": BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN.
pub(crate) fn sqlite_unavailable(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14)
}

/// A uniqueness violation becomes `Conflict(what)`; anything else a backend error.
pub(crate) fn conflict_or(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => backend_err(e),
    }
}

/// The audit record of an issuance names the token it issued.
pub(crate) fn naming_token(mut audit: NewAudit, id: i64) -> NewAudit {
    if let serde_json::Value::Object(m) = &mut audit.detail {
        m.insert("token".into(), id.into());
    }
    audit
}

/// What a backend provides to the shared SQL: where reads go, how a write transaction
/// begins, its credential cache, and the hot paths each backend runs its own way (SQLite on
/// rusqlite, through the commit thread and the in-thread readers; PostgreSQL as single
/// transactions on its pool). The hot paths run the statements of the concern modules.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The sqlx driver the shared SQL is compiled for.
    type Db: SharedWrites;

    /// The pool that plain reads go to.
    fn reader(&self) -> &Pool<Self::Db>;

    /// Begins a write transaction; the caller ends it with [`SharedWrites::commit`].
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Db>>> + Send;

    /// The credential cache ([`crate::cache`]).
    fn caches(&self) -> &Caches;

    /// The live refresh token with this digest and its account access
    /// ([`tokens::REFRESH_BY_DIGEST`]).
    fn load_refresh_token(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<Option<RefreshTokenRecord>>> + Send;

    /// The newest live access token of a refresh token ([`tokens::NEWEST_LIVE_TOKEN`]).
    fn load_newest(
        &self,
        refresh: i64,
    ) -> impl Future<Output = Result<Option<AccessTokenRecord>>> + Send;

    /// The lists of an org with their sizes ([`data::LISTS_OF_ORG`]).
    fn lists_of(&self, org: OrgId) -> impl Future<Output = Result<Vec<List>>> + Send;

    /// One list of an org with its size ([`data::LIST_BY_ID`]).
    fn list_by_id(&self, org: OrgId, id: i64) -> impl Future<Output = Result<Option<List>>> + Send;

    /// An XML API session if live at `now` ([`xml_sessions::XML_SESSION`]; `live_for` in ms).
    fn xml_session_row(
        &self,
        digest: &Digest,
        now: Timestamp,
        live_for: i64,
    ) -> impl Future<Output = Result<Option<XmlSession>>> + Send;

    /// Stores an access token minted from an API key, with its audit record naming it.
    fn insert_key_token(
        &self,
        key: i64,
        org: OrgId,
        user: UserId,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Stores an Event API event durably.
    fn insert_event(&self, event: Event) -> impl Future<Output = Result<()>> + Send;

    /// Remembers an OAuth 1.0a nonce durably ([`oauth1::INSERT_NONCE`]): `true` for its first
    /// use.
    fn insert_nonce(
        &self,
        app: i64,
        stamp: i64,
        nonce: String,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Appends an audit record on its own.
    fn insert_audit_event(&self, audit: NewAudit) -> impl Future<Output = Result<()>> + Send;

    /// Records an access token's first use, and `audit` only if this call recorded it.
    fn mark_used(&self, token: i64, audit: NewAudit) -> impl Future<Output = Result<()>> + Send;

    /// The serialized half of [`grantry_core::store::TokenStore::refresh_access_token`]:
    /// decides again, on the newest live token under the refresh token's serialization, and
    /// issues `fresh` only on [`grantry_core::store::Reissue::Issue`]. `seen` is the newest
    /// token's id as the unlocked read found it.
    fn refresh_locked(
        &self,
        refresh: i64,
        decide: &DecideReissue<'_>,
        fresh: NewAccessToken,
        audit: NewAudit,
        seen: Option<i64>,
    ) -> impl Future<Output = Result<RefreshOutcome>> + Send;
}

/// The writes that several concerns run inside their own transactions, for each driver.
pub(crate) trait SharedWrites: Database {
    /// Commits a write transaction and brings this process's credential cache up to date
    /// with it: the authorization epoch is read inside the transaction, so it counts this
    /// write's own narrowing changes as the triggers of migration 0005 define them, and the
    /// cache is dropped when it moved. What drops the cache is decided in one place, the
    /// triggers, for this process and every other alike.
    fn commit(
        tx: Transaction<'static, Self>,
        caches: &Caches,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Runs `change` (mapping its failure with `failed`) in `tx`; when it changed a row,
    /// appends `audit` and commits ([`SharedWrites::commit`]). `false`, with nothing
    /// committed, when it changed none (the row is gone, or a compare-and-set lost).
    fn commit_if_changed<'q>(
        tx: Transaction<'static, Self>,
        change: sqlx::query::Query<'q, Self, <Self as Database>::Arguments<'q>>,
        failed: impl Fn(sqlx::Error) -> StoreError + Send,
        audit: &NewAudit,
        caches: &Caches,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Appends an audit record ([`audit::INSERT_AUDIT`]), or counts it on the event it
    /// merges with ([`audit::MERGE_AUDIT`]); merges of one key are serialized until the
    /// transaction on `conn` ends.
    fn insert_audit(
        conn: &mut Self::Connection,
        audit: &NewAudit,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Takes the sweeper's lock for the transaction on `conn`: `false` when another instance
    /// holds it ([`retention::SWEEP_LOCK_PG`]; always `true` on SQLite, whose single writer
    /// serializes sweeps).
    fn try_sweep_lock(conn: &mut Self::Connection) -> impl Future<Output = Result<bool>> + Send;

    /// Revokes every refresh token of a rotation family (`family` is its first token's id)
    /// and the access tokens derived from them.
    /// Serializes starting XML API sessions in org `org` until the transaction on `conn`
    /// ends ([`xml_sessions::LOCK_ORG_PG`]; nothing on SQLite, whose single writer
    /// serializes them).
    fn lock_org(conn: &mut Self::Connection, org: OrgId)
        -> impl Future<Output = Result<()>> + Send;

    fn revoke_family(
        conn: &mut Self::Connection,
        family: i64,
        at: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
}

macro_rules! impl_shared_writes {
    ($db:ty, $merge_lock:expr, $sweep_lock:expr, $org_lock:expr) => {
        impl SharedWrites for $db {
            #[allow(clippy::disallowed_methods, reason = "the cache's trust window is measured in monotonic time, which no protocol decision reads")]
            async fn commit(mut tx: Transaction<'static, Self>, caches: &Caches) -> Result<()> {
                let started = tokio::time::Instant::now();
                let epoch: i64 = sqlx::query_scalar(EPOCH_SQL)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                tx.commit().await.map_err(backend_err)?;
                caches.observe(epoch, started);
                Ok(())
            }

            async fn commit_if_changed<'q>(
                mut tx: Transaction<'static, Self>,
                change: sqlx::query::Query<'q, Self, <Self as Database>::Arguments<'q>>,
                failed: impl Fn(sqlx::Error) -> StoreError + Send,
                audit: &NewAudit,
                caches: &Caches,
            ) -> Result<bool> {
                let n = change.execute(&mut *tx).await.map_err(failed)?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                Self::insert_audit(&mut tx, audit).await?;
                Self::commit(tx, caches).await?;
                Ok(true)
            }

            async fn insert_audit(conn: &mut Self::Connection, a: &NewAudit) -> Result<()> {
                if let Some(window) = audit::merges(a) {
                    let lock: Option<&str> = $merge_lock;
                    if let Some(lock) = lock {
                        sqlx::query(lock)
                            .bind(audit::merge_key(a))
                            .execute(&mut *conn)
                            .await
                            .map_err(backend_err)?;
                    }
                    let merged = sqlx::query(audit::MERGE_AUDIT)
                        .bind(a.org_id)
                        .bind(&a.actor)
                        .bind(&a.target)
                        .bind(a.at.0)
                        .bind(a.at.minus(window).0)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend_err)?
                        .rows_affected();
                    if merged > 0 {
                        return Ok(());
                    }
                }
                sqlx::query(audit::INSERT_AUDIT)
                    .bind(a.org_id)
                    .bind(a.at.0)
                    .bind(&a.actor)
                    .bind(a.action)
                    .bind(&a.target)
                    .bind(a.detail.to_string())
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                if let Some(key) = &a.idempotency {
                    sqlx::query(audit::INSERT_IDEMPOTENCY_KEY)
                        .bind(key.org_id)
                        .bind(&key.key)
                        .bind(key.fingerprint.as_slice())
                        .bind(&a.target)
                        .bind(a.at.0)
                        .execute(&mut *conn)
                        .await
                        .map_err(conflict_or(grantry_core::admin::idempotency::WHAT))?;
                }
                Ok(())
            }

            async fn try_sweep_lock(conn: &mut Self::Connection) -> Result<bool> {
                let lock: Option<&str> = $sweep_lock;
                match lock {
                    Some(lock) => sqlx::query_scalar::<_, bool>(lock)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(backend_err),
                    None => Ok(true),
                }
            }

            async fn lock_org(conn: &mut Self::Connection, org: OrgId) -> Result<()> {
                let lock: Option<&str> = $org_lock;
                if let Some(lock) = lock {
                    sqlx::query(lock)
                        .bind(org)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend_err)?;
                }
                Ok(())
            }

            async fn revoke_family(
                conn: &mut Self::Connection,
                family: i64,
                at: Timestamp,
            ) -> Result<()> {
                for statement in [tokens::REVOKE_FAMILY_ACCESS, tokens::REVOKE_FAMILY_REFRESH] {
                    sqlx::query(statement)
                        .bind(family)
                        .bind(at.0)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend_err)?;
                }
                Ok(())
            }
        }
    };
}

// SQLite has one writer, which serializes merges and sweeps by itself.
impl_shared_writes!(sqlx::Sqlite, None, None, None);
impl_shared_writes!(
    sqlx::Postgres,
    Some(audit::MERGE_LOCK_PG),
    Some(retention::SWEEP_LOCK_PG),
    Some(xml_sessions::LOCK_ORG_PG)
);

/// Implements [`grantry_core::Store`] and every storage contract for `$store`, a
/// [`Backend`], from the concern modules' SQL.
macro_rules! impl_store {
    ($store:ty) => {
        $crate::sql::directory::impl_directory_store!($store);
        $crate::sql::sessions::impl_session_store!($store);
        $crate::sql::clients::impl_client_store!($store);
        $crate::sql::account_access::impl_account_access_store!($store);
        $crate::sql::tokens::impl_token_store!($store);
        $crate::sql::api_keys::impl_api_key_store!($store);
        $crate::sql::data::impl_data_store!($store);
        $crate::sql::events::impl_event_store!($store);
        $crate::sql::audit::impl_audit_store!($store);
        $crate::sql::signing_keys::impl_signing_key_store!($store);
        $crate::sql::lockouts::impl_lockout_store!($store);
        $crate::sql::oauth1::impl_oauth1_store!($store);
        $crate::sql::retention::impl_retention_store!($store);
        $crate::sql::xml_sessions::impl_xml_session_store!($store);

        const _: () = {
            use async_trait::async_trait;
            use grantry_core::store::{Result, Store};

            use $crate::sql::{backend_err, Backend, LIVE_SESSIONS, PING};

            #[async_trait]
            impl Store for $store {
                async fn ping(&self) -> Result<()> {
                    sqlx::query(PING)
                        .execute(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(())
                }

                async fn close(&self) {
                    <$store>::close(self).await;
                }

                fn stats(&self) -> grantry_core::store::StoreStats {
                    grantry_core::store::StoreStats {
                        pools: <$store>::pools(self),
                        epoch_confirmed_ago: self.caches().confirmed_ago(),
                    }
                }

                async fn live_sessions(
                    &self,
                    now: grantry_core::Timestamp,
                ) -> Result<grantry_core::store::LiveSessions> {
                    let (console, xml): (i64, i64) = sqlx::query_as(LIVE_SESSIONS)
                        .bind(now.0)
                        .fetch_one(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(grantry_core::store::LiveSessions { console, xml })
                }
            }
        };
    };
}

pub(crate) use impl_store;

#[cfg(test)]
mod unavailability {
    use super::{pg_unavailable, sqlite_unavailable};

    #[test]
    fn postgres_states_that_mean_not_now() {
        // connection failure, admin shutdown (pg_terminate_backend), disk full, too many
        // connections, a standby, serialization failure
        for code in [
            "08006", "08001", "57P01", "57P03", "53100", "53300", "25006", "40001",
        ] {
            assert!(pg_unavailable(code), "{code}");
        }
        // unique violation, undefined table, not-null violation, invalid text: faults
        for code in ["23505", "42P01", "23502", "22021", ""] {
            assert!(!pg_unavailable(code), "{code}");
        }
    }

    #[test]
    fn sqlite_codes_that_mean_not_now() {
        // BUSY, LOCKED, NOMEM, READONLY, IOERR_WRITE (extended), FULL, CANTOPEN
        for code in [5, 6, 7, 8, 10 | (3 << 8), 13, 14, 5 | (1 << 8)] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // CONSTRAINT_UNIQUE, CONSTRAINT_FOREIGNKEY, ERROR, MISMATCH: faults
        for code in [2067, 787, 1, 20] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }
}
