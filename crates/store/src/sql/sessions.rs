//! Signed-in browser sessions ([`grantry_core::store::SessionStore`]).

use super::rows::user_cols;

pub(crate) const INSERT_SESSION: &str =
    "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";

/// The user of a live session: not expired, user not disabled.
pub(crate) const SESSION_USER: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.digest = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
);

/// Session `$1` (unqualified `sessions` columns) is live at `$2`: not expired, seen at or
/// after `$3` (a session not seen since it began was seen when it began), its user a UI user
/// and not disabled. One rule for [`SEEN_SESSION`] and [`TOUCH_SESSION`].
macro_rules! live_session {
    () => {
        "digest = $1 AND expires_at > $2 AND COALESCE(last_seen_at, created_at) >= $3 \
         AND user_id IN (SELECT id FROM users WHERE kind = 'ui' AND disabled_at IS NULL)"
    };
}

/// The user of session `$1` if it is [`live_session`], and when it was last recorded as
/// seen.
pub(crate) const SEEN_SESSION: &str = concat!(
    "SELECT ",
    user_cols!(),
    ", s.seen_at FROM users u JOIN (SELECT user_id, \
     COALESCE(last_seen_at, created_at) AS seen_at FROM sessions WHERE ",
    live_session!(),
    ") s ON u.id = s.user_id"
);

/// A row of [`SEEN_SESSION`].
#[derive(sqlx::FromRow)]
pub(crate) struct SeenSessionRow {
    #[sqlx(flatten)]
    pub(crate) user: super::rows::UserRow,
    pub(crate) seen_at: i64,
}

/// Records request time `$2` on session `$1` if it is [`live_session`]. Returns the session's
/// user, whom [`super::directory::USER_BY_ID`] then reads in the same transaction. The time
/// never moves back: a request slower than a later one leaves the later one's time.
pub(crate) const TOUCH_SESSION: &str = concat!(
    "UPDATE sessions SET last_seen_at = \
     CASE WHEN last_seen_at IS NULL OR last_seen_at < $2 THEN $2 ELSE last_seen_at END \
     WHERE ",
    live_session!(),
    " RETURNING user_id"
);

/// Ends session `$1` (signing out).
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE digest = $1";

/// Implements [`grantry_core::store::SessionStore`] for a [`super::Backend`].
macro_rules! impl_session_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::credential::Digest;
            use grantry_core::model::{User, UserId};
            use grantry_core::store::{Result, SessionStore};
            use grantry_core::Timestamp;

            use $crate::sql::directory::USER_BY_ID;
            use $crate::sql::rows::UserRow;
            use $crate::sql::sessions::*;
            use $crate::sql::{backend_err, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            #[async_trait]
            impl SessionStore for $store {
                async fn create_session(
                    &self,
                    digest: Digest,
                    user: UserId,
                    now: Timestamp,
                    expires_at: Timestamp,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(INSERT_SESSION)
                        .bind(digest.as_bytes())
                        .bind(user)
                        .bind(now.0)
                        .bind(expires_at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await
                }

                async fn session_user(
                    &self,
                    digest: &Digest,
                    now: Timestamp,
                ) -> Result<Option<User>> {
                    sqlx::query_as::<_, UserRow>(SESSION_USER)
                        .bind(digest.as_bytes())
                        .bind(now.0)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?
                        .map(User::try_from)
                        .transpose()
                }

                async fn touch_session(
                    &self,
                    digest: &Digest,
                    now: Timestamp,
                    idle_since: Timestamp,
                    record_before: Timestamp,
                ) -> Result<Option<User>> {
                    // Read first: a session recorded as seen since `record_before` is
                    // answered without a write (docs/architecture.md, the console).
                    let seen = sqlx::query_as::<_, SeenSessionRow>(SEEN_SESSION)
                        .bind(digest.as_bytes())
                        .bind(now.0)
                        .bind(idle_since.0)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    match seen {
                        None => return Ok(None),
                        Some(row) if row.seen_at >= record_before.0 => {
                            return User::try_from(row.user).map(Some);
                        }
                        Some(_) => {}
                    }
                    let mut tx = self.begin_write().await?;
                    let owner: Option<UserId> = sqlx::query_scalar(TOUCH_SESSION)
                        .bind(digest.as_bytes())
                        .bind(now.0)
                        .bind(idle_since.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let Some(owner) = owner else {
                        return Ok(None);
                    };
                    let user = sqlx::query_as::<_, UserRow>(USER_BY_ID)
                        .bind(owner)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .map(User::try_from)
                        .transpose()?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(user)
                }

                async fn delete_session(&self, digest: &Digest) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(DELETE_SESSION)
                        .bind(digest.as_bytes())
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await
                }
            }
        };
    };
}

pub(crate) use impl_session_store;
