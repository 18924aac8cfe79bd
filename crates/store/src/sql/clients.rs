//! Applications (OAuth clients) and their client secrets
//! ([`grantry_core::store::ClientStore`]).

use grantry_core::model::Application;
use grantry_core::store::NewApplication;

use super::rows::{access_last_use, app_cols};

pub(crate) const INSERT_APPLICATION: &str = "INSERT INTO applications (org_id, client_id, name, \
    description, scopes, redirect_uris, public, rotate_refresh_tokens, token_format, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";

pub(crate) const APP_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM applications p WHERE p.client_id = $1"
);

pub(crate) const INSERT_SECRET: &str = "INSERT INTO client_secrets \
    (app_id, digest, created_at, derive_nonce) VALUES ($1, $2, $3, $4)";

/// Makes every secret of the application end at `$2`, or earlier if it already ends sooner.
pub(crate) const END_SECRETS: &str = "UPDATE client_secrets SET expires_at = $2 \
    WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)";

/// Every secret of an application with its end, expired or not (the cache keeps them all).
pub(crate) const SECRETS_OF_APP: &str =
    "SELECT digest, expires_at FROM client_secrets WHERE app_id = $1";

/// The applications of org `$1` by name, each with the latest use of a refresh token of any of
/// its account accesses (revoked ones too: the use happened).
pub(crate) const APPS_OF_ORG: &str = concat!(
    "SELECT ",
    app_cols!(),
    ", (SELECT MAX(",
    access_last_use!(),
    ") FROM account_accesses a WHERE a.app_id = p.id) AS last_used_at \
     FROM applications p WHERE p.org_id = $1 ORDER BY p.name, p.id"
);

/// Client secrets, account accesses with their refresh and access tokens, and authorization
/// codes go with the application (`ON DELETE CASCADE`); the authorization epoch moves
/// (migration 0005), so every process drops what it cached of them.
pub(crate) const DELETE_APPLICATION: &str = "DELETE FROM applications WHERE id = $1";

/// Sets the name, description, scopes and redirect URIs (`$2`-`$5`) of application `$1`
/// if they are still `$6`-`$9`: a compare-and-set, so a change made in between is not
/// overwritten.
pub(crate) const UPDATE_APPLICATION: &str = "UPDATE applications SET name = $2, \
    description = $3, scopes = $4, redirect_uris = $5 \
    WHERE id = $1 AND name = $6 AND description = $7 AND scopes = $8 AND redirect_uris = $9";

/// The record of an application just stored under `id`.
pub(crate) fn app_from_new(id: i64, app: NewApplication) -> Application {
    Application {
        id,
        org_id: app.org_id,
        client_id: app.client_id,
        name: app.name,
        description: app.description,
        scopes: app.scopes,
        redirect_uris: app.redirect_uris,
        public: app.public,
        rotate_refresh_tokens: app.rotate_refresh_tokens,
        token_format: app.token_format,
        created_at: app.created_at,
    }
}

/// Implements [`grantry_core::store::ClientStore`] for a [`super::Backend`].
macro_rules! impl_client_store {
    ($store:ty) => {
        const _: () = {
            use std::sync::Arc;

            use async_trait::async_trait;
            use sqlx::Database;

            use grantry_core::credential::Digest;
            use grantry_core::model::{AppId, Application, OrgId};
            use grantry_core::store::audit::NewAudit;
            use grantry_core::store::{AppSummary, ClientStore, NewApplication, NewSecret, Result};
            use grantry_core::Timestamp;

            use $crate::cache::{cached, SecretEntry};
            use $crate::sql::clients::*;
            use $crate::sql::rows::{AppRow, AppSummaryRow, SecretRow};
            use $crate::sql::{backend_err, conflict_or, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            async fn insert_application(
                conn: &mut <Db as Database>::Connection,
                app: &NewApplication,
            ) -> Result<i64> {
                let uris = serde_json::to_string(&app.redirect_uris).map_err(backend_err)?;
                sqlx::query_scalar(INSERT_APPLICATION)
                    .bind(app.org_id)
                    .bind(&app.client_id)
                    .bind(&app.name)
                    .bind(&app.description)
                    .bind(app.scopes.bits())
                    .bind(uris)
                    .bind(app.public)
                    .bind(app.rotate_refresh_tokens)
                    .bind(app.token_format.as_str())
                    .bind(app.created_at.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(conflict_or("application"))
            }

            async fn insert_secret(
                conn: &mut <Db as Database>::Connection,
                app: AppId,
                secret: &NewSecret,
                at: Timestamp,
            ) -> Result<()> {
                sqlx::query(INSERT_SECRET)
                    .bind(app)
                    .bind(secret.digest.as_bytes())
                    .bind(at.0)
                    .bind(secret.derive_nonce.as_ref().map(|n| n.as_slice()))
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_err)?;
                Ok(())
            }

            #[async_trait]
            impl ClientStore for $store {
                async fn create_application(
                    &self,
                    app: NewApplication,
                    secret: Option<NewSecret>,
                    audit: NewAudit,
                ) -> Result<Application> {
                    let mut tx = self.begin_write().await?;
                    let id = insert_application(&mut tx, &app).await?;
                    if let Some(d) = secret {
                        insert_secret(&mut tx, id, &d, app.created_at).await?;
                    }
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(app_from_new(id, app))
                }

                async fn application_by_client_id(
                    &self,
                    client_id: &str,
                ) -> Result<Option<Application>> {
                    let c = self.caches();
                    let found = cached(c, "apps", &c.apps, client_id.to_string(), || async move {
                        sqlx::query_as::<_, AppRow>(APP_BY_CLIENT_ID)
                            .bind(client_id)
                            .fetch_optional(self.reader())
                            .await
                            .map_err(backend_err)?
                            .map(|r| Application::try_from(r).map(Arc::new))
                            .transpose()
                    })
                    .await?;
                    Ok(found.map(|a| (*a).clone()))
                }

                async fn rotate_client_secret(
                    &self,
                    app: AppId,
                    secret: NewSecret,
                    now: Timestamp,
                    old_expires_at: Timestamp,
                    audit: NewAudit,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(END_SECRETS)
                        .bind(app)
                        .bind(old_expires_at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    insert_secret(&mut tx, app, &secret, now).await?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await
                }

                async fn client_secrets(&self, app: AppId, now: Timestamp) -> Result<Vec<Digest>> {
                    // Every secret of the application is cached with its end; the time test is
                    // made here, so a cached list is right at any `now`.
                    let c = self.caches();
                    let all = cached(c, "secrets", &c.secrets, app, || async move {
                        let rows = sqlx::query_as::<_, SecretRow>(SECRETS_OF_APP)
                            .bind(app)
                            .fetch_all(self.reader())
                            .await
                            .map_err(backend_err)?;
                        let list = rows
                            .into_iter()
                            .map(SecretEntry::try_from)
                            .collect::<Result<Vec<_>>>()?;
                        Ok(Some(Arc::new(list)))
                    })
                    .await?
                    .unwrap_or_default();
                    Ok(all
                        .iter()
                        .filter(|(_, ends)| ends.is_none_or(|e| e > now.0))
                        .map(|(d, _)| *d)
                        .collect())
                }

                async fn applications(&self, org: OrgId) -> Result<Vec<AppSummary>> {
                    sqlx::query_as::<_, AppSummaryRow>(APPS_OF_ORG)
                        .bind(org)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?
                        .into_iter()
                        .map(AppSummary::try_from)
                        .collect()
                }

                async fn delete_application(&self, app: AppId, audit: NewAudit) -> Result<bool> {
                    let tx = self.begin_write().await?;
                    let change = sqlx::query(DELETE_APPLICATION).bind(app);
                    Db::commit_if_changed(tx, change, backend_err, &audit, self.caches()).await
                }

                async fn update_application(
                    &self,
                    old: &Application,
                    new: &Application,
                    audit: NewAudit,
                ) -> Result<bool> {
                    let uris = |a: &Application| {
                        serde_json::to_string(&a.redirect_uris).map_err(backend_err)
                    };
                    let change = sqlx::query(UPDATE_APPLICATION)
                        .bind(old.id)
                        .bind(&new.name)
                        .bind(&new.description)
                        .bind(new.scopes.bits())
                        .bind(uris(new)?)
                        .bind(&old.name)
                        .bind(&old.description)
                        .bind(old.scopes.bits())
                        .bind(uris(old)?);
                    let tx = self.begin_write().await?;
                    let taken = conflict_or("application");
                    Db::commit_if_changed(tx, change, taken, &audit, self.caches()).await
                }
            }
        };
    };
}

pub(crate) use impl_client_store;
