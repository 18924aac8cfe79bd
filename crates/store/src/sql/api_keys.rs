//! API users' secret keys and the tokens of the deprecated `client_credentials` path
//! ([`grantry_core::store::ApiKeyStore`]).

use grantry_core::store::audit::NewAudit;

use super::rows::{key_cols, user_cols};

/// Takes the API user's row lock (PostgreSQL; SQLite's write transaction is already
/// exclusive) so key generation and deletion for one user run one at a time.
pub(crate) const LOCK_API_USER: &str =
    "UPDATE users SET grants = grants WHERE id = $1 AND kind = 'api'";

pub(crate) const TAKEN_SLOTS: &str =
    "SELECT slot FROM api_keys WHERE user_id = $1 AND slot IS NOT NULL";

pub(crate) const INSERT_KEY: &str = "INSERT INTO api_keys (user_id, slot, digest, created_at) \
    VALUES ($1, $2, $3, $4) RETURNING id";

pub(crate) const KEY_IN_SLOT: &str = concat!(
    "SELECT ",
    key_cols!(),
    " FROM api_keys k WHERE k.user_id = $1 AND k.slot = $2"
);

/// A deleted key loses its slot and keeps working until `$3`.
pub(crate) const DELETE_KEY: &str =
    "UPDATE api_keys SET slot = NULL, deleted_at = $2, stops_at = $3 WHERE id = $1";

/// A key's use at `$2`, unless a later one is recorded.
pub(crate) const MARK_KEY_USED: &str = "UPDATE api_keys SET last_used_at = $2 \
    WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

pub(crate) const PROMOTE_KEY: &str = "UPDATE api_keys SET slot = 1 WHERE user_id = $1 AND slot = 2";

/// The user's live keys and those still in their grace, slot order first.
pub(crate) const KEYS_OF_USER: &str = concat!(
    "SELECT ",
    key_cols!(),
    " FROM api_keys k WHERE k.user_id = $1 AND (k.slot IS NOT NULL OR k.stops_at > $2) \
     ORDER BY k.slot IS NULL, k.slot, k.id"
);

pub(crate) const KEY_BY_DIGEST: &str = concat!(
    "SELECT ",
    key_cols!(),
    ", ",
    user_cols!(),
    " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.digest = $1"
);

/// An access token minted from an API key (SQLite; PostgreSQL writes it with its audit record
/// in one statement).
pub(crate) const INSERT_KEY_TOKEN: &str = "INSERT INTO access_tokens \
    (org_id, user_id, api_key_id, digest, nonce, scopes, issued_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

/// The audit record of a new key names its slot.
pub(crate) fn naming_slot(mut audit: NewAudit, slot: i64) -> NewAudit {
    match &mut audit.detail {
        serde_json::Value::Object(m) => {
            m.insert("slot".into(), slot.into());
        }
        d => *d = serde_json::json!({ "slot": slot }),
    }
    audit
}

/// The audit record of a deletion says whether the other key was promoted.
pub(crate) fn naming_promotion(mut audit: NewAudit, promoted: bool) -> NewAudit {
    if let serde_json::Value::Object(m) = &mut audit.detail {
        m.insert("promoted".into(), promoted.into());
    }
    audit
}

/// Implements [`grantry_core::store::ApiKeyStore`] for a [`super::Backend`].
macro_rules! impl_api_key_store {
    ($store:ty) => {
        const _: () = {
            use std::sync::Arc;

            use async_trait::async_trait;
            use sqlx::Database;

            use grantry_core::credential::Digest;
            use grantry_core::model::{ApiKey, User, UserId};
            use grantry_core::store::audit::NewAudit;
            use grantry_core::store::{ApiKeyStore, DeletedKey, NewAccessToken, Result};
            use grantry_core::{StoreError, Timestamp};

            use $crate::cache::cached;
            use $crate::sql::api_keys::*;
            use $crate::sql::rows::{KeyRow, KeyUserRow};
            use $crate::sql::{backend_err, conflict_or, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;
            type Conn = <Db as Database>::Connection;

            async fn lock_api_user(conn: &mut Conn, user: UserId) -> Result<()> {
                let n = sqlx::query(LOCK_API_USER)
                    .bind(user)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound("API user"));
                }
                Ok(())
            }

            /// The first free slot of the user's two.
            async fn free_slot(conn: &mut Conn, user: UserId) -> Result<Option<i64>> {
                let taken: Vec<i64> = sqlx::query_scalar(TAKEN_SLOTS)
                    .bind(user)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                Ok([1i64, 2].into_iter().find(|s| !taken.contains(s)))
            }

            /// Takes the key out of its slot; promotes slot 2 when slot 1 was deleted.
            async fn retire(
                conn: &mut Conn,
                key: &ApiKey,
                now: Timestamp,
                stops_at: Timestamp,
            ) -> Result<bool> {
                sqlx::query(DELETE_KEY)
                    .bind(key.id)
                    .bind(now.0)
                    .bind(stops_at.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                if key.slot != Some(1) {
                    return Ok(false);
                }
                let n = sqlx::query(PROMOTE_KEY)
                    .bind(key.user_id)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                Ok(n == 1)
            }

            #[async_trait]
            impl ApiKeyStore for $store {
                async fn generate_api_key(
                    &self,
                    user: UserId,
                    digest: Digest,
                    now: Timestamp,
                    audit: NewAudit,
                ) -> Result<ApiKey> {
                    let mut tx = self.begin_write().await?;
                    lock_api_user(&mut tx, user).await?;
                    let Some(slot) = free_slot(&mut tx, user).await? else {
                        return Err(StoreError::Conflict("secret key"));
                    };
                    let id: i64 = sqlx::query_scalar(INSERT_KEY)
                        .bind(user)
                        .bind(slot)
                        .bind(digest.as_bytes())
                        .bind(now.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(conflict_or("secret key"))?;
                    Db::insert_audit(&mut tx, &naming_slot(audit, slot)).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(ApiKey {
                        id,
                        user_id: user,
                        slot: Some(slot as u8),
                        created_at: now,
                        deleted_at: None,
                        stops_at: None,
                        last_used_at: None,
                    })
                }

                async fn delete_api_key(
                    &self,
                    user: UserId,
                    slot: u8,
                    now: Timestamp,
                    stops_at: Timestamp,
                    audit: NewAudit,
                ) -> Result<Option<DeletedKey>> {
                    let mut tx = self.begin_write().await?;
                    lock_api_user(&mut tx, user).await?;
                    let Some(row) = sqlx::query_as::<_, KeyRow>(KEY_IN_SLOT)
                        .bind(user)
                        .bind(slot as i64)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?
                    else {
                        return Ok(None);
                    };
                    let mut key = ApiKey::from(row);
                    let promoted = retire(&mut tx, &key, now, stops_at).await?;
                    Db::insert_audit(&mut tx, &naming_promotion(audit, promoted)).await?;
                    Db::commit(tx, self.caches()).await?;
                    key.slot = None;
                    key.deleted_at = Some(now);
                    key.stops_at = Some(stops_at);
                    Ok(Some(DeletedKey { key, promoted }))
                }

                async fn api_keys(&self, user: UserId, now: Timestamp) -> Result<Vec<ApiKey>> {
                    let rows = sqlx::query_as::<_, KeyRow>(KEYS_OF_USER)
                        .bind(user)
                        .bind(now.0)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(rows.into_iter().map(ApiKey::from).collect())
                }

                async fn api_key_by_digest(
                    &self,
                    digest: &Digest,
                ) -> Result<Option<(ApiKey, User)>> {
                    let c = self.caches();
                    let found = cached(c, "api_keys", &c.api_keys, digest.0, || async move {
                        sqlx::query_as::<_, KeyUserRow>(KEY_BY_DIGEST)
                            .bind(digest.as_bytes())
                            .fetch_optional(self.reader())
                            .await
                            .map_err(backend_err)?
                            .map(|r| <(ApiKey, User)>::try_from(r).map(Arc::new))
                            .transpose()
                    })
                    .await?;
                    Ok(found.map(|k| (*k).clone()))
                }

                async fn mark_api_key_used(
                    &self,
                    digest: &Digest,
                    key: i64,
                    now: Timestamp,
                ) -> Result<()> {
                    let c = self.caches();
                    let ticket = c.ticket();
                    let mut tx = self.begin_write().await?;
                    sqlx::query(MARK_KEY_USED)
                        .bind(key)
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    tx.commit().await.map_err(backend_err)?;
                    // The cached record now has this use, so the next requests skip the write.
                    if let (Some(ticket), Some(found)) = (ticket, c.api_keys.get(&digest.0)) {
                        let (mut k, u) = (*found).clone();
                        k.last_used_at = Some(k.last_used_at.map_or(now, |t| t.max(now)));
                        c.put(&c.api_keys, ticket, digest.0, Arc::new((k, u)));
                    }
                    Ok(())
                }

                async fn issue_key_token(
                    &self,
                    key: &ApiKey,
                    user: &User,
                    token: NewAccessToken,
                    audit: NewAudit,
                ) -> Result<i64> {
                    self.insert_key_token(key.id, user.org_id, user.id, token, audit)
                        .await
                }
            }
        };
    };
}

pub(crate) use impl_api_key_store;
