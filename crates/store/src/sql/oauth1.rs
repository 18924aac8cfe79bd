//! OAuth 1.0a credentials and nonces ([`grantry_core::store::OAuth1Store`]).

use super::rows::{app_cols, user_cols};

/// The derived client secrets of application `$1` with their ends, newest first (which are
/// still valid is decided at each lookup, so a cached list is right at any time).
pub(crate) const DERIVABLE_SECRETS: &str = "SELECT digest, derive_nonce, expires_at \
    FROM client_secrets WHERE app_id = $1 AND derive_nonce IS NOT NULL ORDER BY id DESC";

pub(crate) const INSERT_REQUEST_TOKEN: &str = "INSERT INTO oauth1_request_tokens \
    (digest, app_id, callback, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const REQUEST_TOKEN_BY_DIGEST: &str = concat!(
    "SELECT r.id AS r_id, r.callback AS r_callback, r.scopes AS r_scopes, \
     r.expires_at AS r_expires_at, r.user_id AS r_user_id, r.verifier AS r_verifier, \
     r.used_at AS r_used_at, ",
    app_cols!(),
    " FROM oauth1_request_tokens r JOIN applications p ON p.id = r.app_id WHERE r.digest = $1"
);

/// Records the user `$2` who authorized live, unauthorized temporary credentials `$1`, with
/// the verifier's digest `$3`, at `$4`.
pub(crate) const AUTHORIZE_REQUEST_TOKEN: &str = "UPDATE oauth1_request_tokens \
    SET user_id = $2, verifier = $3, authorized_at = $4 \
    WHERE digest = $1 AND user_id IS NULL AND used_at IS NULL AND expires_at > $4";

/// Spends authorized, live temporary credentials `$1` of application `$3` at `$2`, in one
/// conditional statement (RFC 5849 §2.3: single use).
pub(crate) const SPEND_REQUEST_TOKEN: &str = "UPDATE oauth1_request_tokens SET used_at = $2 \
    WHERE digest = $1 AND app_id = $3 AND used_at IS NULL AND user_id IS NOT NULL \
    AND expires_at > $2 RETURNING user_id, scopes";

pub(crate) const ORG_OF_APP: &str = "SELECT org_id FROM applications WHERE id = $1";

pub(crate) const INSERT_OAUTH1_TOKEN: &str = "INSERT INTO oauth1_tokens \
    (digest, access_id, scopes, created_at) VALUES ($1, $2, $3, $4) RETURNING id";

/// Token credentials with their account access's state, user and application.
pub(crate) const OAUTH1_TOKEN_BY_DIGEST: &str = concat!(
    "SELECT o.id AS o_id, o.scopes AS o_scopes, o.revoked_at AS o_revoked_at, \
     a.revoked_at AS a_revoked_at, ",
    user_cols!(),
    ", ",
    app_cols!(),
    " FROM oauth1_tokens o JOIN account_accesses a ON a.id = o.access_id \
     JOIN users u ON u.id = a.user_id JOIN applications p ON p.id = a.app_id \
     WHERE o.digest = $1"
);

/// Remembers a nonce; a second use of the same (consumer, timestamp, nonce) inserts nothing.
pub(crate) const INSERT_NONCE: &str =
    "INSERT INTO oauth1_nonces (app_id, stamp, nonce, expires_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// Implements [`grantry_core::store::OAuth1Store`] for a [`super::Backend`].
macro_rules! impl_oauth1_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::{FromRow, Row};

            use grantry_core::credential::Digest;
            use grantry_core::model::{AppId, Application, User, UserId};
            use grantry_core::store::audit::NewAudit;
            use grantry_core::store::{
                DerivableSecret, Exchange, NewRequestToken, OAuth1Store, OAuth1TokenRecord,
                RequestTokenRecord, Result,
            };
            use grantry_core::{GrantSet, StoreError, Timestamp};

            use $crate::cache::cached;
            use $crate::sql::account_access::UPSERT_CONSENTED_ACCESS;
            use $crate::sql::oauth1::*;
            use $crate::sql::rows::{AccessRow, AppRow, UserRow};
            use $crate::sql::{backend_err, conflict_or, naming_token, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            fn digest_of(bytes: Vec<u8>) -> Result<Digest> {
                Digest::from_slice(&bytes)
                    .ok_or_else(|| StoreError::Backend("a stored digest is not 32 bytes".into()))
            }

            #[async_trait]
            impl OAuth1Store for $store {
                async fn derivable_secrets(
                    &self,
                    app: AppId,
                    now: Timestamp,
                ) -> Result<Vec<DerivableSecret>> {
                    let c = self.caches();
                    let all = cached(c, "derivable", &c.derivable, app, || async move {
                        let rows: Vec<(Vec<u8>, Vec<u8>, Option<i64>)> =
                            sqlx::query_as(DERIVABLE_SECRETS)
                                .bind(app)
                                .fetch_all(self.reader())
                                .await
                                .map_err(backend_err)?;
                        let list = rows
                            .into_iter()
                            .map(|(digest, nonce, ends)| {
                                let nonce =
                                    <[u8; 16]>::try_from(nonce.as_slice()).map_err(|_| {
                                        StoreError::Backend(
                                            "a stored derive nonce is not 16 bytes".into(),
                                        )
                                    })?;
                                let digest = digest_of(digest)?;
                                Ok((DerivableSecret { digest, nonce }, ends))
                            })
                            .collect::<Result<Vec<_>>>()?;
                        Ok(Some(std::sync::Arc::new(list)))
                    })
                    .await?
                    .unwrap_or_default();
                    Ok(all
                        .iter()
                        .filter(|(_, ends)| ends.is_none_or(|e| e > now.0))
                        .map(|(s, _)| s.clone())
                        .collect())
                }

                async fn create_request_token(&self, t: NewRequestToken) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(INSERT_REQUEST_TOKEN)
                        .bind(t.digest.as_bytes())
                        .bind(t.app_id)
                        .bind(&t.callback)
                        .bind(t.scopes.bits())
                        .bind(t.created_at.0)
                        .bind(t.expires_at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(conflict_or("request token"))?;
                    Db::commit(tx, self.caches()).await
                }

                async fn request_token(
                    &self,
                    digest: &Digest,
                ) -> Result<Option<RequestTokenRecord>> {
                    let Some(r) = sqlx::query(REQUEST_TOKEN_BY_DIGEST)
                        .bind(digest.as_bytes())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?
                    else {
                        return Ok(None);
                    };
                    let app = Application::try_from(AppRow::from_row(&r).map_err(backend_err)?)?;
                    let user: Option<UserId> = r.try_get("r_user_id").map_err(backend_err)?;
                    let verifier: Option<Vec<u8>> = r.try_get("r_verifier").map_err(backend_err)?;
                    let authorized = match (user, verifier) {
                        (Some(u), Some(v)) => Some((u, digest_of(v)?)),
                        _ => None,
                    };
                    let used: Option<i64> = r.try_get("r_used_at").map_err(backend_err)?;
                    Ok(Some(RequestTokenRecord {
                        id: r.try_get("r_id").map_err(backend_err)?,
                        app,
                        callback: r.try_get("r_callback").map_err(backend_err)?,
                        scopes: GrantSet::from_bits(r.try_get("r_scopes").map_err(backend_err)?),
                        expires_at: Timestamp(r.try_get("r_expires_at").map_err(backend_err)?),
                        authorized,
                        used: used.is_some(),
                    }))
                }

                async fn authorize_request_token(
                    &self,
                    digest: &Digest,
                    user: UserId,
                    verifier: Digest,
                    now: Timestamp,
                    audit: NewAudit,
                ) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(AUTHORIZE_REQUEST_TOKEN)
                        .bind(digest.as_bytes())
                        .bind(user)
                        .bind(verifier.as_bytes())
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected()
                        == 1;
                    if done {
                        Db::insert_audit(&mut tx, &audit).await?;
                        Db::commit(tx, self.caches()).await?;
                    }
                    Ok(done)
                }

                async fn exchange_request_token(
                    &self,
                    digest: &Digest,
                    app: AppId,
                    now: Timestamp,
                    token: Digest,
                    audit: NewAudit,
                ) -> Result<Exchange> {
                    let mut tx = self.begin_write().await?;
                    let spent: Option<(i64, i64)> = sqlx::query_as(SPEND_REQUEST_TOKEN)
                        .bind(digest.as_bytes())
                        .bind(now.0)
                        .bind(app)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let Some((user, scopes)) = spent else {
                        return Ok(Exchange::Refused);
                    };
                    let org: i64 = sqlx::query_scalar(ORG_OF_APP)
                        .bind(app)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let access = sqlx::query_as::<_, AccessRow>(UPSERT_CONSENTED_ACCESS)
                        .bind(org)
                        .bind(app)
                        .bind(user)
                        .bind(scopes)
                        .bind(now.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(conflict_or("account access"))?;
                    let access = grantry_core::model::AccountAccess::from(access).id;
                    let id: i64 = sqlx::query_scalar(INSERT_OAUTH1_TOKEN)
                        .bind(token.as_bytes())
                        .bind(access)
                        .bind(scopes)
                        .bind(now.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(conflict_or("token credentials"))?;
                    Db::insert_audit(&mut tx, &naming_token(audit, id)).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(Exchange::Issued { access, token: id })
                }

                async fn oauth1_token(&self, digest: &Digest) -> Result<Option<OAuth1TokenRecord>> {
                    let c = self.caches();
                    let found = cached(c, "oauth1_tokens", &c.oauth1, digest.0, || async move {
                        let Some(r) = sqlx::query(OAUTH1_TOKEN_BY_DIGEST)
                            .bind(digest.as_bytes())
                            .fetch_optional(self.reader())
                            .await
                            .map_err(backend_err)?
                        else {
                            return Ok(None);
                        };
                        let user = User::try_from(UserRow::from_row(&r).map_err(backend_err)?)?;
                        let app =
                            Application::try_from(AppRow::from_row(&r).map_err(backend_err)?)?;
                        let token_revoked: Option<i64> =
                            r.try_get("o_revoked_at").map_err(backend_err)?;
                        let access_revoked: Option<i64> =
                            r.try_get("a_revoked_at").map_err(backend_err)?;
                        Ok(Some(std::sync::Arc::new(OAuth1TokenRecord {
                            id: r.try_get("o_id").map_err(backend_err)?,
                            scopes: GrantSet::from_bits(
                                r.try_get("o_scopes").map_err(backend_err)?,
                            ),
                            revoked: token_revoked.is_some() || access_revoked.is_some(),
                            user,
                            app,
                        })))
                    })
                    .await?;
                    Ok(found.map(|r| (*r).clone()))
                }

                async fn use_nonce(
                    &self,
                    app: AppId,
                    stamp: i64,
                    nonce: &str,
                    expires_at: Timestamp,
                ) -> Result<bool> {
                    // A durable write on every signed request: the backend's hot path (on
                    // SQLite, the commit thread's group commit).
                    self.insert_nonce(app, stamp, nonce.to_string(), expires_at)
                        .await
                }
            }
        };
    };
}

pub(crate) use impl_oauth1_store;
