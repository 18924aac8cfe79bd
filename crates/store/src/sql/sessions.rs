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

/// Implements [`grantry_core::store::SessionStore`] for a [`super::Backend`].
macro_rules! impl_session_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::credential::Digest;
            use grantry_core::model::{User, UserId};
            use grantry_core::store::{Result, SessionStore};
            use grantry_core::Timestamp;

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
            }
        };
    };
}

pub(crate) use impl_session_store;
