//! The XML API's `Login` sessions ([`grantry_core::store::XmlSessionStore`]).

use sqlx::FromRow;

use grantry_core::model::{ApiKey, User};
use grantry_core::store::XmlSession;
use grantry_core::{StoreError, Timestamp};

use super::rows::{key_cols, user_cols, KeyRow, UserRow};

/// PostgreSQL: locks org `$1`'s row until the transaction ends, so that counting its live
/// sessions and adding one is a single step (SQLite's single writer serializes it already).
pub(crate) const LOCK_ORG_PG: &str = "SELECT id FROM orgs WHERE id = $1 FOR UPDATE";

/// How many sessions of org `$1` are live at `$2` (`$3`: how long past `last_seen_at`).
pub(crate) const COUNT_LIVE: &str =
    "SELECT COUNT(*) FROM xml_sessions WHERE org_id = $1 AND last_seen_at + $3 >= $2";

pub(crate) const INSERT_XML_SESSION: &str = "INSERT INTO xml_sessions \
    (digest, org_id, user_id, api_key_id, created_at, last_seen_at, live_for) \
    VALUES ($1, $2, $3, $4, $5, $5, $6)";

/// Session `$1` if live at `$2` (`$3`: how long past `last_seen_at`), with its user and key.
pub(crate) const XML_SESSION: &str = concat!(
    "SELECT s.id AS s_id, s.org_id AS s_org_id, s.created_at AS s_created_at, \
     s.last_seen_at AS s_last_seen_at, ",
    key_cols!(),
    ", ",
    user_cols!(),
    " FROM xml_sessions s JOIN users u ON u.id = s.user_id \
     JOIN api_keys k ON k.id = s.api_key_id \
     WHERE s.digest = $1 AND s.last_seen_at + $3 >= $2"
);

/// Records call time `$2` on session `$1`; the time never moves back.
pub(crate) const TOUCH_XML_SESSION: &str = "UPDATE xml_sessions SET last_seen_at = $2 \
    WHERE id = $1 AND last_seen_at < $2";

/// Ends session `$1`.
pub(crate) const DELETE_XML_SESSION: &str = "DELETE FROM xml_sessions WHERE digest = $1";

#[derive(FromRow)]
pub(crate) struct XmlSessionRow {
    s_id: i64,
    s_org_id: i64,
    s_created_at: i64,
    s_last_seen_at: i64,
    #[sqlx(flatten)]
    key: KeyRow,
    #[sqlx(flatten)]
    user: UserRow,
}

impl XmlSessionRow {
    /// The same columns from a rusqlite row (the SQLite hot path).
    pub(crate) fn from_rusqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<XmlSessionRow> {
        Ok(XmlSessionRow {
            s_id: r.get("s_id")?,
            s_org_id: r.get("s_org_id")?,
            s_created_at: r.get("s_created_at")?,
            s_last_seen_at: r.get("s_last_seen_at")?,
            key: KeyRow::from_rusqlite(r)?,
            user: UserRow::from_rusqlite(r)?,
        })
    }
}

impl TryFrom<XmlSessionRow> for XmlSession {
    type Error = StoreError;

    fn try_from(r: XmlSessionRow) -> Result<XmlSession, StoreError> {
        let key: ApiKey = r.key.into();
        let user: User = r.user.try_into()?;
        Ok(XmlSession {
            id: r.s_id,
            org_id: r.s_org_id,
            created_at: Timestamp(r.s_created_at),
            last_seen_at: Timestamp(r.s_last_seen_at),
            user,
            key,
        })
    }
}

/// Milliseconds of a duration, for SQL.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Implements [`grantry_core::store::XmlSessionStore`] for a [`super::Backend`].
macro_rules! impl_xml_session_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::credential::Digest;
            use grantry_core::model::{ApiKey, User};
            use grantry_core::store::{
                NewAudit, Result, SessionBounds, SessionStart, XmlSession, XmlSessionStore,
            };
            use grantry_core::Timestamp;

            use $crate::sql::xml_sessions::*;
            use $crate::sql::{backend_err, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            #[async_trait]
            impl XmlSessionStore for $store {
                async fn start_xml_session(
                    &self,
                    digest: Digest,
                    user: &User,
                    key: &ApiKey,
                    now: Timestamp,
                    bounds: SessionBounds,
                    audit: NewAudit,
                ) -> Result<SessionStart> {
                    let live_for = millis(bounds.live_for);
                    let mut tx = self.begin_write().await?;
                    <Db as SharedWrites>::lock_org(&mut tx, user.org_id).await?;
                    let live: i64 = sqlx::query_scalar(COUNT_LIVE)
                        .bind(user.org_id)
                        .bind(now.0)
                        .bind(live_for)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    if live >= i64::from(bounds.max_per_org) {
                        return Ok(SessionStart::OrgFull);
                    }
                    sqlx::query(INSERT_XML_SESSION)
                        .bind(digest.as_bytes())
                        .bind(user.org_id)
                        .bind(user.id)
                        .bind(key.id)
                        .bind(now.0)
                        .bind(live_for)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    <Db as SharedWrites>::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(SessionStart::Started)
                }

                async fn xml_session(
                    &self,
                    digest: &Digest,
                    now: Timestamp,
                    live_for: std::time::Duration,
                ) -> Result<Option<XmlSession>> {
                    // Read on every call, never cached, so that ending a session acts on the
                    // next call everywhere; a hot read of each backend's own.
                    self.xml_session_row(digest, now, millis(live_for)).await
                }

                async fn touch_xml_session(&self, id: i64, now: Timestamp) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(TOUCH_XML_SESSION)
                        .bind(id)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await
                }

                async fn end_xml_session(&self, digest: &Digest, audit: NewAudit) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    let n = sqlx::query(DELETE_XML_SESSION)
                        .bind(digest.as_bytes())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected();
                    if n == 0 {
                        return Ok(false);
                    }
                    <Db as SharedWrites>::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(true)
                }
            }
        };
    };
}

pub(crate) use impl_xml_session_store;
