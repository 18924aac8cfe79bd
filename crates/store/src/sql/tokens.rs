//! Refresh tokens and access tokens: the re-issue window, rotation, first use and revocation
//! ([`grantry_core::store::TokenStore`]; docs/architecture.md, token rules). The statements of
//! the hot paths are run by each backend its own way ([`super::Backend`]).

use super::rows::{app_cols, user_cols};

/// A bearer access token with everything that decides whether it opens an API now.
pub(crate) const BEARER_BY_DIGEST: &str = concat!(
    "SELECT t.id AS t_id, t.scopes AS t_scopes, t.issued_at AS t_issued_at, \
     t.expires_at AS t_expires_at, t.revoked_at AS t_revoked_at, a.revoked_at AS a_revoked_at, \
     r.revoked_at AS r_revoked_at, t.first_used_at AS t_first_used_at, t.app_id AS t_app_id, \
     k.stops_at AS k_stops_at, ",
    user_cols!(),
    ", ",
    app_cols!(),
    " FROM access_tokens t JOIN users u ON u.id = t.user_id \
     LEFT JOIN account_accesses a ON a.id = t.access_id \
     LEFT JOIN refresh_tokens r ON r.id = t.refresh_id \
     LEFT JOIN applications p ON p.id = t.app_id \
     LEFT JOIN api_keys k ON k.id = t.api_key_id \
     WHERE t.digest = $1"
);

/// A live refresh token with its live account access.
pub(crate) const REFRESH_BY_DIGEST: &str = "SELECT r.id AS r_id, r.scopes AS r_scopes, \
    r.created_at AS r_created_at, r.rotated_at AS r_rotated_at, \
    COALESCE(r.family_id, r.id) AS r_family, \
    a.id, a.org_id, a.app_id, a.user_id, a.created_by, a.scopes, a.created_at, \
    p.client_id AS p_client_id, u.username AS u_username \
    FROM refresh_tokens r JOIN account_accesses a ON a.id = r.access_id \
    JOIN applications p ON p.id = a.app_id JOIN users u ON u.id = a.user_id \
    WHERE r.digest = $1 AND r.revoked_at IS NULL AND a.revoked_at IS NULL";

/// The newest live access token of a live refresh token.
pub(crate) const NEWEST_LIVE_TOKEN: &str = "SELECT t.id, t.nonce, t.scopes, t.issued_at, \
    t.expires_at, t.kid FROM access_tokens t \
    JOIN refresh_tokens r ON r.id = t.refresh_id JOIN account_accesses a ON a.id = r.access_id \
    WHERE t.refresh_id = $1 AND t.revoked_at IS NULL AND r.revoked_at IS NULL \
    AND a.revoked_at IS NULL ORDER BY t.issued_at DESC, t.id DESC LIMIT 1";

/// Takes the refresh token's row lock (PostgreSQL; SQLite's write lock is already held).
pub(crate) const LOCK_REFRESH: &str = "UPDATE refresh_tokens SET last_used_at = $2 \
    WHERE id = $1 AND revoked_at IS NULL RETURNING access_id";

pub(crate) const ACCESS_OWNER: &str =
    "SELECT org_id, app_id, user_id FROM account_accesses WHERE id = $1 AND revoked_at IS NULL";

/// The newest live access token of a refresh token, under its lock.
pub(crate) const NEWEST_TOKEN: &str = "SELECT id, nonce, scopes, issued_at, expires_at, kid \
    FROM access_tokens WHERE refresh_id = $1 AND revoked_at IS NULL \
    ORDER BY issued_at DESC, id DESC LIMIT 1";

pub(crate) const INSERT_REFRESHED_TOKEN: &str = "INSERT INTO access_tokens \
    (org_id, user_id, app_id, access_id, refresh_id, digest, nonce, scopes, issued_at, \
    expires_at, kid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";

/// Records a first use; changes nothing when one was recorded already.
pub(crate) const MARK_USED: &str =
    "UPDATE access_tokens SET first_used_at = $2 WHERE id = $1 AND first_used_at IS NULL";

/// The access tokens derived from the refresh tokens of family `$1`.
pub(crate) const REVOKE_FAMILY_ACCESS: &str = "UPDATE access_tokens SET revoked_at = $2 \
    WHERE revoked_at IS NULL AND refresh_id IN \
    (SELECT id FROM refresh_tokens WHERE id = $1 OR family_id = $1)";

/// The refresh tokens of family `$1`.
pub(crate) const REVOKE_FAMILY_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = $2 \
    WHERE (id = $1 OR family_id = $1) AND revoked_at IS NULL";

/// Revokes a live access token issued to application `$2` (RFC 7009 §2.1).
pub(crate) const REVOKE_ACCESS_TOKEN_OF_APP: &str = "UPDATE access_tokens SET revoked_at = $3 \
    WHERE digest = $1 AND app_id = $2 AND revoked_at IS NULL";

/// Revokes a live access token API user `$2` obtained with a secret key (RFC 7009 §2.1).
pub(crate) const REVOKE_ACCESS_TOKEN_OF_API_USER: &str = "UPDATE access_tokens \
    SET revoked_at = $3 WHERE digest = $1 AND user_id = $2 AND app_id IS NULL \
    AND api_key_id IS NOT NULL AND revoked_at IS NULL";

/// Revokes a live refresh token of an account access of application `$2`, returning its
/// family, whose access tokens go with it (RFC 7009 §2.1).
pub(crate) const REVOKE_REFRESH_TOKEN_OF_APP: &str = "UPDATE refresh_tokens SET revoked_at = $3 \
    WHERE digest = $1 AND revoked_at IS NULL \
    AND access_id IN (SELECT id FROM account_accesses WHERE app_id = $2) \
    RETURNING COALESCE(family_id, id) AS family";

/// Whether a live access or refresh token has the digest `$1`, whoever it was issued to.
pub(crate) const LIVE_TOKEN_EXISTS: &str = "SELECT EXISTS \
    (SELECT 1 FROM access_tokens WHERE digest = $1 AND revoked_at IS NULL) \
    OR EXISTS (SELECT 1 FROM refresh_tokens WHERE digest = $1 AND revoked_at IS NULL)";

/// Marks a live, unrotated refresh token rotated (and used, for the console's last use),
/// returning what its successor inherits.
pub(crate) const ROTATE_REFRESH: &str =
    "UPDATE refresh_tokens SET rotated_at = $2, last_used_at = $2 \
    WHERE id = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
    RETURNING access_id, scopes, COALESCE(family_id, id) AS family";

pub(crate) const INSERT_SUCCESSOR: &str = "INSERT INTO refresh_tokens \
    (access_id, digest, scopes, family_id, parent_id, derive_nonce, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// The live successor of a rotated refresh token and its derivation nonce.
pub(crate) const SUCCESSOR: &str =
    "SELECT id, derive_nonce FROM refresh_tokens WHERE parent_id = $1 AND revoked_at IS NULL";

/// Implements [`grantry_core::store::TokenStore`] for a [`super::Backend`].
macro_rules! impl_token_store {
    ($store:ty) => {
        const _: () = {
            use std::sync::Arc;

            use async_trait::async_trait;
            use sqlx::{Database, FromRow};

            use grantry_core::credential::Digest;
            use grantry_core::model::{AccessTokenRecord, Application};
            use grantry_core::store::audit::NewAudit;
            use grantry_core::store::{
                BearerRecord, DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord,
                Reissue, Result, Revocation, Rotation, TokenOwner, TokenStore,
            };
            use grantry_core::Timestamp;

            use $crate::cache::cached;
            use $crate::sql::rows::{AppRow, BearerRow, OwnerRow, RotatedRow};
            use $crate::sql::tokens::*;
            use $crate::sql::{backend_err, naming_token, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            /// Revokes the live token with this digest if it was issued to `owner` (a refresh
            /// token with its whole grant); whether there was one.
            async fn revoke_owned(
                conn: &mut <Db as Database>::Connection,
                owner: TokenOwner,
                digest: &Digest,
                at: Timestamp,
            ) -> Result<bool> {
                let (access_sql, id) = match owner {
                    TokenOwner::Application(app) => (REVOKE_ACCESS_TOKEN_OF_APP, app),
                    TokenOwner::ApiUser(user) => (REVOKE_ACCESS_TOKEN_OF_API_USER, user),
                };
                let n = sqlx::query(access_sql)
                    .bind(digest.as_bytes())
                    .bind(id)
                    .bind(at.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                if n == 1 {
                    return Ok(true);
                }
                let TokenOwner::Application(app) = owner else {
                    return Ok(false);
                };
                let family: Option<i64> = sqlx::query_scalar(REVOKE_REFRESH_TOKEN_OF_APP)
                    .bind(digest.as_bytes())
                    .bind(app)
                    .bind(at.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                let Some(family) = family else {
                    return Ok(false);
                };
                // The whole grant: the token, its rotated relatives, their access tokens.
                Db::revoke_family(conn, family, at).await?;
                Ok(true)
            }

            /// The bearer record of an access token, read from the database.
            async fn load_bearer(b: &$store, digest: &Digest) -> Result<Option<BearerRecord>> {
                let Some(r) = sqlx::query(BEARER_BY_DIGEST)
                    .bind(digest.as_bytes())
                    .fetch_optional(b.reader())
                    .await
                    .map_err(backend_err)?
                else {
                    return Ok(None);
                };
                let bearer = BearerRow::from_row(&r).map_err(backend_err)?;
                let app = match bearer.app_id {
                    Some(_) => {
                        let app = AppRow::from_row(&r).map_err(backend_err)?;
                        Some(Application::try_from(app)?)
                    }
                    None => None,
                };
                bearer.into_record(app).map(Some)
            }

            #[async_trait]
            impl TokenStore for $store {
                async fn revoke_token(
                    &self,
                    owner: TokenOwner,
                    digest: &Digest,
                    at: Timestamp,
                    audit: NewAudit,
                ) -> Result<Revocation> {
                    let mut tx = self.begin_write().await?;
                    let outcome = if revoke_owned(&mut tx, owner, digest, at).await? {
                        Db::insert_audit(&mut tx, &audit).await?;
                        Revocation::Revoked
                    } else {
                        let live: bool = sqlx::query_scalar(LIVE_TOKEN_EXISTS)
                            .bind(digest.as_bytes())
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(backend_err)?;
                        if live {
                            Revocation::NotOwner
                        } else {
                            Revocation::Unknown
                        }
                    };
                    Db::commit(tx, self.caches()).await?;
                    Ok(outcome)
                }

                async fn rotate_refresh_token(
                    &self,
                    r: Rotation,
                ) -> Result<Option<(i64, AccessTokenRecord)>> {
                    let mut tx = self.begin_write().await?;
                    let Some(parent) = sqlx::query_as::<_, RotatedRow>(ROTATE_REFRESH)
                        .bind(r.old)
                        .bind(r.at.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?
                    else {
                        return Ok(None);
                    };
                    let successor: i64 = sqlx::query_scalar(INSERT_SUCCESSOR)
                        .bind(parent.access_id)
                        .bind(r.digest.as_bytes())
                        .bind(parent.scopes)
                        .bind(parent.family)
                        .bind(r.old)
                        .bind(&r.nonce)
                        .bind(r.at.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let owner = sqlx::query_as::<_, OwnerRow>(ACCESS_OWNER)
                        .bind(parent.access_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let t = &r.access_token;
                    let id: i64 = sqlx::query_scalar(INSERT_REFRESHED_TOKEN)
                        .bind(owner.org_id)
                        .bind(owner.user_id)
                        .bind(owner.app_id)
                        .bind(parent.access_id)
                        .bind(successor)
                        .bind(t.digest.as_bytes())
                        .bind(&t.nonce)
                        .bind(t.scopes.bits())
                        .bind(t.issued_at.0)
                        .bind(t.expires_at.0)
                        .bind(&t.kid)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::insert_audit(&mut tx, &naming_token(r.audit, id)).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(Some((successor, r.access_token.stored_as(id))))
                }

                async fn refresh_successor(&self, parent: i64) -> Result<Option<(i64, Vec<u8>)>> {
                    let found = sqlx::query_as::<_, (i64, Option<Vec<u8>>)>(SUCCESSOR)
                        .bind(parent)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(found.and_then(|(id, nonce)| nonce.map(|n| (id, n))))
                }

                async fn revoke_refresh_family(
                    &self,
                    family: i64,
                    at: Timestamp,
                    audit: NewAudit,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    Db::revoke_family(&mut tx, family, at).await?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await
                }

                async fn refresh_token(
                    &self,
                    digest: &Digest,
                ) -> Result<Option<RefreshTokenRecord>> {
                    let c = self.caches();
                    let found = cached(c, "refresh", &c.refresh, digest.0, || async move {
                        Ok(self.load_refresh_token(digest).await?.map(Arc::new))
                    })
                    .await?;
                    Ok(found.map(|r| (*r).clone()))
                }

                async fn refresh_access_token(
                    &self,
                    refresh: i64,
                    decide: &DecideReissue<'_>,
                    fresh: NewAccessToken,
                    audit: NewAudit,
                ) -> Result<RefreshOutcome> {
                    // Fast path, no write: inside the window the answer is decided by the
                    // newest live token, which a read (or the cache) can see. Only an issuance
                    // takes the lock below (and decides again under it). A cached newest token
                    // can only be older than the real one when another instance issued
                    // meanwhile; then the decision is "issue" and the locked path below finds
                    // the real one.
                    let c = self.caches();
                    let ticket = c.ticket();
                    let newest = cached(c, "newest", &c.newest, refresh, || async move {
                        Ok(self.load_newest(refresh).await?.map(Arc::new))
                    })
                    .await?;
                    if let Some(t) = &newest {
                        match decide(Some(t)) {
                            Reissue::Reuse => return Ok(RefreshOutcome::Reused((**t).clone())),
                            Reissue::Reject { retry_at } => {
                                return Ok(RefreshOutcome::Rejected { retry_at })
                            }
                            Reissue::Issue => {}
                        }
                    }
                    let seen = newest.as_ref().map(|t| t.id);
                    let outcome = self
                        .refresh_locked(refresh, decide, fresh, audit, seen)
                        .await?;
                    if let (Some(ticket), RefreshOutcome::Issued(t) | RefreshOutcome::Reused(t)) =
                        (ticket, &outcome)
                    {
                        c.put(&c.newest, ticket, refresh, Arc::new(t.clone()));
                    }
                    Ok(outcome)
                }

                async fn access_token(&self, digest: &Digest) -> Result<Option<BearerRecord>> {
                    let c = self.caches();
                    let found = cached(c, "bearer", &c.bearer, digest.0, || async move {
                        Ok(load_bearer(self, digest).await?.map(Arc::new))
                    })
                    .await?;
                    Ok(found.map(|b| (*b).clone()))
                }

                async fn mark_access_token_used(
                    &self,
                    digest: &Digest,
                    token: i64,
                    audit: NewAudit,
                ) -> Result<()> {
                    let c = self.caches();
                    let ticket = c.ticket();
                    self.mark_used(token, audit).await?;
                    // The cached record now says "used", so later calls skip this write.
                    if let (Some(ticket), Some(rec)) = (ticket, c.bearer.get(&digest.0)) {
                        let mut rec = (*rec).clone();
                        rec.first_used = true;
                        c.put(&c.bearer, ticket, digest.0, Arc::new(rec));
                    }
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use impl_token_store;
