//! Organizations and their users ([`grantry_core::store::DirectoryStore`]).

use grantry_core::model::{OrgId, User};
use grantry_core::store::NewUser;

use super::rows::user_cols;

pub(crate) const INSERT_ORG: &str =
    "INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at";

pub(crate) const ORG_BY_NAME: &str = "SELECT id, name, created_at FROM orgs WHERE name = $1";

pub(crate) const ORG_BY_ID: &str = "SELECT id, name, created_at FROM orgs WHERE id = $1";

pub(crate) const COUNT_ORGS: &str = "SELECT COUNT(*) AS n FROM orgs";

pub(crate) const INSERT_USER: &str = "INSERT INTO users (org_id, username, email, kind, role, \
    grants, password_hash, key_id, principal, created_at, must_change_password) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";

pub(crate) const USER_BY_ID: &str =
    concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1");

pub(crate) const USER_BY_USERNAME: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.org_id = $1 AND u.username = $2"
);

pub(crate) const PRINCIPAL_ADMIN: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.org_id = $1 AND u.principal"
);

pub(crate) const PASSWORD_HASH: &str = "SELECT password_hash FROM users WHERE id = $1";

pub(crate) const SET_GRANTS: &str = "UPDATE users SET grants = $2 WHERE id = $1";

/// Adds the grant bits `$2` to a user's, in place.
pub(crate) const ADD_GRANT: &str =
    "UPDATE users SET grants = grants | $2 WHERE id = $1 RETURNING grants";

/// Takes the grant bits `$2` from a user's, in place.
pub(crate) const REMOVE_GRANT: &str =
    "UPDATE users SET grants = grants & ~$2 WHERE id = $1 RETURNING grants";

/// `$2` is the time of disabling, or `NULL` to enable.
pub(crate) const SET_DISABLED: &str = "UPDATE users SET disabled_at = $2 WHERE id = $1";

/// Keys, account accesses and tokens go with the user (`ON DELETE CASCADE`).
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";

/// Every user of org `$1`, by username.
pub(crate) const USERS_OF_ORG: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.org_id = $1 ORDER BY u.username, u.id"
);

/// `$2` is the role's name.
pub(crate) const SET_ROLE: &str = "UPDATE users SET role = $2 WHERE id = $1";

/// Sets the role and grants (`$2`, `$3`) of user `$1` if they are still `$4` and `$5`.
pub(crate) const UPDATE_USER_ACCESS: &str = "UPDATE users SET role = $2, grants = $3 \
    WHERE id = $1 AND role = $4 AND grants = $5";

/// A UI user's password hash `$2`, and `$3`: whether it must be changed at the next sign-in.
pub(crate) const SET_PASSWORD: &str = "UPDATE users SET password_hash = $2, \
    must_change_password = $3 WHERE id = $1 AND kind = 'ui'";

/// Ends the browser sessions of user `$1`, all but the one with digest `$2` when it is set.
pub(crate) const END_OTHER_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR digest <> $2)";

/// The record of a user just stored under `id`.
pub(crate) fn user_from_new(id: i64, org: OrgId, u: NewUser, principal: bool) -> User {
    User {
        id,
        org_id: org,
        username: u.username,
        email: u.email,
        kind: u.kind,
        role: u.role,
        grants: u.grants,
        key_id: u.key_id,
        principal,
        disabled: false,
        must_change_password: u.must_change_password,
        created_at: u.created_at,
    }
}

/// Implements [`grantry_core::store::DirectoryStore`] for a [`super::Backend`].
macro_rules! impl_directory_store {
    ($store:ty) => {
        const _: () = {
            use std::sync::Arc;

            use async_trait::async_trait;
            use sqlx::query::Query;
            use sqlx::Database;

            use grantry_core::credential::Digest;
            use grantry_core::model::{Org, OrgId, Role, User, UserId};
            use grantry_core::store::audit::NewAudit;
            use grantry_core::store::{DirectoryStore, NewUser, Result};
            use grantry_core::{Grant, GrantSet, StoreError, Timestamp};

            use $crate::cache::cached;
            use $crate::sql::directory::*;
            use $crate::sql::rows::{OrgRow, UserRow};
            use $crate::sql::{backend_err, conflict_or, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            async fn insert_user(
                conn: &mut <Db as Database>::Connection,
                org: OrgId,
                u: &NewUser,
                principal: bool,
            ) -> Result<i64> {
                sqlx::query_scalar(INSERT_USER)
                    .bind(org)
                    .bind(&u.username)
                    .bind(&u.email)
                    .bind(u.kind.as_str())
                    .bind(u.role.as_str())
                    .bind(u.grants.bits())
                    .bind(&u.password_hash)
                    .bind(&u.key_id)
                    .bind(principal)
                    .bind(u.created_at.0)
                    .bind(u.must_change_password)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(conflict_or("user"))
            }

            /// A statement changing one user, with its parameters bound.
            type Change<'q> = Query<'q, Db, <Db as Database>::Arguments<'q>>;

            /// Runs `change` with its audit record; `NotFound("user")` if no row changed.
            async fn change_user(b: &$store, change: Change<'_>, audit: &NewAudit) -> Result<()> {
                let tx = b.begin_write().await?;
                match Db::commit_if_changed(tx, change, backend_err, audit, b.caches()).await? {
                    true => Ok(()),
                    false => Err(StoreError::NotFound("user")),
                }
            }

            #[async_trait]
            impl DirectoryStore for $store {
                async fn create_org(
                    &self,
                    name: &str,
                    admin: NewUser,
                    mut audit: NewAudit,
                ) -> Result<(Org, User)> {
                    let mut tx = self.begin_write().await?;
                    let org: Org = sqlx::query_as::<_, OrgRow>(INSERT_ORG)
                        .bind(name)
                        .bind(admin.created_at.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(conflict_or("organization"))?
                        .into();
                    let uid = insert_user(&mut tx, org.id, &admin, true).await?;
                    audit.org_id = Some(org.id);
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    let id = org.id;
                    Ok((org, user_from_new(uid, id, admin, true)))
                }

                async fn org_by_name(&self, name: &str) -> Result<Option<Org>> {
                    let row = sqlx::query_as::<_, OrgRow>(ORG_BY_NAME)
                        .bind(name)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(row.map(Org::from))
                }

                async fn org_by_id(&self, id: OrgId) -> Result<Option<Org>> {
                    let row = sqlx::query_as::<_, OrgRow>(ORG_BY_ID)
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(row.map(Org::from))
                }

                async fn count_orgs(&self) -> Result<i64> {
                    sqlx::query_scalar(COUNT_ORGS)
                        .fetch_one(self.reader())
                        .await
                        .map_err(backend_err)
                }

                async fn create_user(
                    &self,
                    org: OrgId,
                    user: NewUser,
                    audit: NewAudit,
                ) -> Result<User> {
                    let mut tx = self.begin_write().await?;
                    let id = insert_user(&mut tx, org, &user, false).await?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(user_from_new(id, org, user, false))
                }

                async fn user_by_username(
                    &self,
                    org: OrgId,
                    username: &str,
                ) -> Result<Option<User>> {
                    sqlx::query_as::<_, UserRow>(USER_BY_USERNAME)
                        .bind(org)
                        .bind(username)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?
                        .map(User::try_from)
                        .transpose()
                }

                async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
                    let c = self.caches();
                    let found = cached(c, "users", &c.users, id, || async move {
                        sqlx::query_as::<_, UserRow>(USER_BY_ID)
                            .bind(id)
                            .fetch_optional(self.reader())
                            .await
                            .map_err(backend_err)?
                            .map(|r| User::try_from(r).map(Arc::new))
                            .transpose()
                    })
                    .await?;
                    Ok(found.map(|u| (*u).clone()))
                }

                async fn password_hash(&self, user: UserId) -> Result<Option<String>> {
                    let hash: Option<Option<String>> = sqlx::query_scalar(PASSWORD_HASH)
                        .bind(user)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(hash.flatten())
                }

                async fn principal_admin(&self, org: OrgId) -> Result<Option<User>> {
                    sqlx::query_as::<_, UserRow>(PRINCIPAL_ADMIN)
                        .bind(org)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(backend_err)?
                        .map(User::try_from)
                        .transpose()
                }

                async fn set_user_grants(
                    &self,
                    user: UserId,
                    grants: GrantSet,
                    audit: NewAudit,
                ) -> Result<()> {
                    let change = sqlx::query(SET_GRANTS).bind(user).bind(grants.bits());
                    change_user(self, change, &audit).await
                }

                async fn change_user_grant(
                    &self,
                    user: UserId,
                    grant: Grant,
                    on: bool,
                    audit: NewAudit,
                ) -> Result<GrantSet> {
                    let sql = if on { ADD_GRANT } else { REMOVE_GRANT };
                    let mut tx = self.begin_write().await?;
                    let bits: Option<i64> = sqlx::query_scalar(sql)
                        .bind(user)
                        .bind(GrantSet::from_iter([grant]).bits())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let Some(bits) = bits else {
                        return Err(StoreError::NotFound("user"));
                    };
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(GrantSet::from_bits(bits))
                }

                async fn set_user_disabled(
                    &self,
                    user: UserId,
                    disabled: bool,
                    at: Timestamp,
                    audit: NewAudit,
                ) -> Result<()> {
                    let change = sqlx::query(SET_DISABLED)
                        .bind(user)
                        .bind(disabled.then_some(at.0));
                    change_user(self, change, &audit).await
                }

                async fn delete_user(&self, user: UserId, audit: NewAudit) -> Result<()> {
                    change_user(self, sqlx::query(DELETE_USER).bind(user), &audit).await
                }

                async fn users(&self, org: OrgId) -> Result<Vec<User>> {
                    sqlx::query_as::<_, UserRow>(USERS_OF_ORG)
                        .bind(org)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?
                        .into_iter()
                        .map(User::try_from)
                        .collect()
                }

                async fn set_user_role(
                    &self,
                    user: UserId,
                    role: Role,
                    audit: NewAudit,
                ) -> Result<()> {
                    let change = sqlx::query(SET_ROLE).bind(user).bind(role.as_str());
                    change_user(self, change, &audit).await
                }

                async fn update_user_access(
                    &self,
                    old: &User,
                    role: Role,
                    grants: GrantSet,
                    audit: NewAudit,
                ) -> Result<bool> {
                    let change = sqlx::query(UPDATE_USER_ACCESS)
                        .bind(old.id)
                        .bind(role.as_str())
                        .bind(grants.bits())
                        .bind(old.role.as_str())
                        .bind(old.grants.bits());
                    let tx = self.begin_write().await?;
                    Db::commit_if_changed(tx, change, backend_err, &audit, self.caches()).await
                }

                async fn set_password(
                    &self,
                    user: UserId,
                    password_hash: String,
                    must_change: bool,
                    keep_session: Option<Digest>,
                    audit: NewAudit,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let n = sqlx::query(SET_PASSWORD)
                        .bind(user)
                        .bind(password_hash)
                        .bind(must_change)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected();
                    if n == 0 {
                        return Err(StoreError::NotFound("user"));
                    }
                    sqlx::query(END_OTHER_SESSIONS)
                        .bind(user)
                        .bind(keep_session.as_ref().map(Digest::as_bytes))
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::insert_audit(&mut tx, &audit).await?;
                    Db::commit(tx, self.caches()).await
                }
            }
        };
    };
}

pub(crate) use impl_directory_store;
