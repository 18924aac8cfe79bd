//! Account access, the web-server flow's consent, and authorization codes
//! ([`grantry_core::store::AccountAccessStore`]).

use super::rows::{access_cols, access_last_use, code_cols};

/// An account access an admin adds (`$5` is every grant).
pub(crate) const INSERT_ACCESS: &str = concat!(
    "INSERT INTO account_accesses (org_id, app_id, user_id, created_by, scopes, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    access_cols!()
);

/// Creates the pair's account access or extends its live one (taking its row lock) in one
/// statement: concurrent first consents then queue on the new row (PostgreSQL) instead of
/// both inserting and all but one failing with a conflict.
pub(crate) const UPSERT_CONSENTED_ACCESS: &str = concat!(
    "INSERT INTO account_accesses (org_id, app_id, user_id, created_by, scopes, created_at) \
     VALUES ($1, $2, $3, NULL, $4, $5) \
     ON CONFLICT (app_id, user_id) WHERE revoked_at IS NULL \
     DO UPDATE SET scopes = account_accesses.scopes | excluded.scopes RETURNING ",
    access_cols!()
);

pub(crate) const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens \
    (access_id, digest, scopes, created_at) VALUES ($1, $2, $3, $4) RETURNING id";

/// Records the refresh token a code was redeemed for, so that a reuse can revoke it.
/// Records on code `$1` the refresh token `$2` it issued, unless the code was reused while it
/// was being redeemed (then nothing is issued).
pub(crate) const CODE_ISSUED: &str =
    "UPDATE auth_codes SET refresh_id = $2 WHERE id = $1 AND reused_at IS NULL";

/// The first access token of a consent.
pub(crate) const INSERT_CONSENT_TOKEN: &str = "INSERT INTO access_tokens (org_id, user_id, \
    app_id, access_id, refresh_id, digest, nonce, scopes, issued_at, expires_at, kid) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub(crate) const INSERT_CODE: &str = "INSERT INTO auth_codes (digest, org_id, app_id, user_id, \
    redirect_uri, redirect_uri_given, scopes, code_challenge, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Spends a code of application `$3` in one conditional statement: only the first
/// redemption gets a row (RFC 6749 §4.1.2, codes are single use).
pub(crate) const SPEND_CODE: &str = concat!(
    "UPDATE auth_codes SET used_at = $2 WHERE digest = $1 AND app_id = $3 AND used_at IS NULL \
     RETURNING ",
    code_cols!()
);

/// Records the reuse of a spent code (and takes its row lock while what it issued is revoked,
/// RFC 6749 §4.1.2).
pub(crate) const MARK_CODE_REUSED: &str = concat!(
    "UPDATE auth_codes SET reused_at = COALESCE(reused_at, $2) WHERE digest = $1 \
     AND app_id = $3 RETURNING ",
    code_cols!()
);

/// Whether any code has the digest `$1`.
pub(crate) const CODE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM auth_codes WHERE digest = $1)";

pub(crate) const LIVE_ACCESS: &str = concat!(
    "SELECT ",
    access_cols!(),
    " FROM account_accesses WHERE app_id = $1 AND user_id = $2 AND revoked_at IS NULL"
);

/// Every live account access of an org, oldest first, with the names an admin reads.
pub(crate) const ACCESSES_OF_ORG: &str = concat!(
    "SELECT a.id, a.org_id, a.app_id, a.user_id, \
     a.created_by, a.scopes, a.created_at, p.client_id AS p_client_id, p.name AS p_name, \
     u.username AS u_username, b.username AS b_username, ",
    access_last_use!(),
    " AS last_used_at \
     FROM account_accesses a JOIN applications p ON p.id = a.app_id \
     JOIN users u ON u.id = a.user_id LEFT JOIN users b ON b.id = a.created_by \
     WHERE a.org_id = $1 AND a.revoked_at IS NULL ORDER BY a.created_at, a.id"
);

pub(crate) const REVOKE_ACCESS: &str =
    "UPDATE account_accesses SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";

pub(crate) const REVOKE_ACCESS_TOKENS: &str =
    "UPDATE access_tokens SET revoked_at = $2 WHERE access_id = $1 AND revoked_at IS NULL";

pub(crate) const REVOKE_ACCESS_REFRESH_TOKENS: &str =
    "UPDATE refresh_tokens SET revoked_at = $2 WHERE access_id = $1 AND revoked_at IS NULL";

/// Implements [`grantry_core::store::AccountAccessStore`] for a [`super::Backend`].
macro_rules! impl_account_access_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Database;

            use grantry_core::credential::Digest;
            use grantry_core::model::{AccessId, AccountAccess, AppId, OrgId, UserId};
            use grantry_core::store::audit::NewAudit;
            use grantry_core::store::{
                AccessSummary, AccountAccessStore, Consent, NewAuthCode, Redemption, Result,
            };
            use grantry_core::{GrantSet, Timestamp};

            use $crate::sql::account_access::*;
            use $crate::sql::rows::{AccessRow, CodeRow, SummaryRow};
            use $crate::sql::{backend_err, conflict_or, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;
            type Conn = <Db as Database>::Connection;

            async fn insert_refresh_token(
                conn: &mut Conn,
                access: i64,
                digest: &Digest,
                scopes: GrantSet,
                at: Timestamp,
            ) -> Result<i64> {
                sqlx::query_scalar(INSERT_REFRESH_TOKEN)
                    .bind(access)
                    .bind(digest.as_bytes())
                    .bind(scopes.bits())
                    .bind(at.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(conflict_or("refresh token"))
            }

            /// The account access of a consent, created or extended.
            async fn upsert_access(
                conn: &mut Conn,
                c: &Consent,
                at: Timestamp,
            ) -> Result<AccountAccess> {
                let row = sqlx::query_as::<_, AccessRow>(UPSERT_CONSENTED_ACCESS)
                    .bind(c.org)
                    .bind(c.app)
                    .bind(c.user)
                    .bind(c.scopes.bits())
                    .bind(at.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(conflict_or("account access"))?;
                Ok(row.into())
            }

            /// The consent's first access token, derived from refresh token `refresh`.
            async fn insert_consent_token(
                conn: &mut Conn,
                c: &Consent,
                access: AccessId,
                refresh: i64,
            ) -> Result<()> {
                let t = &c.access_token;
                sqlx::query(INSERT_CONSENT_TOKEN)
                    .bind(c.org)
                    .bind(c.user)
                    .bind(c.app)
                    .bind(access)
                    .bind(refresh)
                    .bind(t.digest.as_bytes())
                    .bind(&t.nonce)
                    .bind(t.scopes.bits())
                    .bind(t.issued_at.0)
                    .bind(t.expires_at.0)
                    .bind(&t.kid)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                Ok(())
            }

            /// Runs a statement on the code with this digest, returning it if it matched.
            async fn code_update(
                conn: &mut Conn,
                statement: &'static str,
                digest: &Digest,
                app: AppId,
                now: Timestamp,
            ) -> Result<Option<CodeRow>> {
                sqlx::query_as::<_, CodeRow>(statement)
                    .bind(digest.as_bytes())
                    .bind(now.0)
                    .bind(app)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(backend_err)
            }

            /// Runs a revocation of everything under account access `access`.
            async fn revoke_under(
                conn: &mut Conn,
                statement: &'static str,
                access: AccessId,
                at: Timestamp,
            ) -> Result<u64> {
                let done = sqlx::query(statement)
                    .bind(access)
                    .bind(at.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                Ok(done.rows_affected())
            }

            #[async_trait]
            impl AccountAccessStore for $store {
                async fn create_account_access(
                    &self,
                    org: OrgId,
                    app: AppId,
                    user: UserId,
                    created_by: Option<UserId>,
                    refresh_token: Digest,
                    audit: NewAudit,
                ) -> Result<AccountAccess> {
                    let mut tx = self.begin_write().await?;
                    let access: AccountAccess = sqlx::query_as::<_, AccessRow>(INSERT_ACCESS)
                        .bind(org)
                        .bind(app)
                        .bind(user)
                        .bind(created_by)
                        .bind(GrantSet::all().bits())
                        .bind(audit.at.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(conflict_or("account access"))?
                        .into();
                    insert_refresh_token(
                        &mut tx,
                        access.id,
                        &refresh_token,
                        access.scopes,
                        audit.at,
                    )
                    .await?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(access)
                }

                async fn grant_account_access(
                    &self,
                    consent: Consent,
                    audit: NewAudit,
                ) -> Result<(AccountAccess, i64)> {
                    let mut tx = self.begin_write().await?;
                    let access = upsert_access(&mut tx, &consent, audit.at).await?;
                    let rid = insert_refresh_token(
                        &mut tx,
                        access.id,
                        &consent.refresh_token,
                        consent.scopes,
                        audit.at,
                    )
                    .await?;
                    if let Some(code) = consent.code {
                        let recorded = sqlx::query(CODE_ISSUED)
                            .bind(code)
                            .bind(rid)
                            .execute(&mut *tx)
                            .await
                            .map_err(backend_err)?;
                        if recorded.rows_affected() == 0 {
                            // Reused meanwhile: the transaction is dropped, nothing issued.
                            return Err(grantry_core::StoreError::NotFound(
                                "unspent authorization code",
                            ));
                        }
                    }
                    insert_consent_token(&mut tx, &consent, access.id, rid).await?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok((access, rid))
                }

                async fn create_auth_code(&self, code: NewAuthCode) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(INSERT_CODE)
                        .bind(code.digest.as_bytes())
                        .bind(code.org_id)
                        .bind(code.app_id)
                        .bind(code.user_id)
                        .bind(&code.redirect_uri)
                        .bind(code.redirect_uri_given)
                        .bind(code.scopes.bits())
                        .bind(&code.code_challenge)
                        .bind(code.created_at.0)
                        .bind(code.expires_at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await
                }

                async fn redeem_auth_code(
                    &self,
                    digest: &Digest,
                    app: AppId,
                    now: Timestamp,
                ) -> Result<Redemption> {
                    let mut tx = self.begin_write().await?;
                    if let Some(row) = code_update(&mut tx, SPEND_CODE, digest, app, now).await? {
                        Db::commit(tx, self.caches()).await?;
                        return Ok(Redemption::Fresh(row.into()));
                    }
                    let reused = code_update(&mut tx, MARK_CODE_REUSED, digest, app, now).await?;
                    let Some(row) = reused else {
                        let exists: bool = sqlx::query_scalar(CODE_EXISTS)
                            .bind(digest.as_bytes())
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(backend_err)?;
                        return Ok(if exists {
                            Redemption::WrongClient
                        } else {
                            Redemption::Unknown
                        });
                    };
                    if let Some(rid) = row.refresh_id {
                        // The code's refresh token heads its rotation family: its successors
                        // were issued from the code too.
                        Db::revoke_family(&mut tx, rid, now).await?;
                    }
                    Db::commit(tx, self.caches()).await?;
                    Ok(Redemption::Reused(row.into()))
                }

                async fn account_access(
                    &self,
                    app: AppId,
                    user: UserId,
                ) -> Result<Option<AccountAccess>> {
                    let row = sqlx::query_as::<_, AccessRow>(LIVE_ACCESS)
                        .bind(app)
                        .bind(user)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(row.map(AccountAccess::from))
                }

                async fn account_accesses(&self, org: OrgId) -> Result<Vec<AccessSummary>> {
                    let rows = sqlx::query_as::<_, SummaryRow>(ACCESSES_OF_ORG)
                        .bind(org)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(rows.into_iter().map(AccessSummary::from).collect())
                }

                async fn revoke_account_access(
                    &self,
                    access: AccessId,
                    at: Timestamp,
                    audit: NewAudit,
                ) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    if revoke_under(&mut tx, REVOKE_ACCESS, access, at).await? == 0 {
                        return Ok(false);
                    }
                    revoke_under(&mut tx, REVOKE_ACCESS_TOKENS, access, at).await?;
                    revoke_under(&mut tx, REVOKE_ACCESS_REFRESH_TOKENS, access, at).await?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(true)
                }
            }
        };
    };
}

pub(crate) use impl_account_access_store;
