//! The SQL both backends share. `impl_store!` expands to one `Store` implementation per
//! backend type, so each is checked by the compiler against its own driver while the
//! statements exist once. A backend provides `reader()` (a pool) and `begin_write()` (a write
//! transaction); everything else is here.

use grantry_core::StoreError;

/// Any driver error, for logs; never shown to clients.
pub(crate) fn backend_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// A uniqueness violation becomes `Conflict(what)`; anything else a backend error.
pub(crate) fn conflict_or(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => backend_err(e),
    }
}

// The column lists as literals, so statements can be `concat!`ed at compile time.
macro_rules! user_cols {
    () => {
        "u.id AS u_id, u.org_id AS u_org_id, u.username AS u_username, \
    u.email AS u_email, u.kind AS u_kind, u.role AS u_role, u.grants AS u_grants, \
    u.key_id AS u_key_id, u.principal AS u_principal, u.disabled_at AS u_disabled_at, \
    u.created_at AS u_created_at"
    };
}
macro_rules! app_cols {
    () => {
        "p.id AS p_id, p.org_id AS p_org_id, p.client_id AS p_client_id, \
    p.name AS p_name, p.description AS p_description, p.scopes AS p_scopes, \
    p.redirect_uris AS p_redirect_uris, p.public AS p_public, \
    p.rotate_refresh_tokens AS p_rotate, p.token_format AS p_token_format, \
    p.created_at AS p_created_at"
    };
}
macro_rules! key_cols {
    () => {
        "k.id AS k_id, k.user_id AS k_user_id, k.slot AS k_slot, \
    k.created_at AS k_created_at, k.deleted_at AS k_deleted_at, k.stops_at AS k_stops_at"
    };
}

pub(crate) const USER_COLS: &str = user_cols!();

pub(crate) const KEY_COLS: &str = key_cols!();

pub(crate) const ACCESS_COLS: &str = "id, org_id, app_id, user_id, created_by, scopes, created_at";

pub(crate) const CODE_COLS: &str =
    "id, org_id, app_id, user_id, redirect_uri, redirect_uri_given, \
    scopes, code_challenge, created_at, expires_at, refresh_id";

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

pub(crate) const USER_BY_ID: &str =
    concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1");

pub(crate) const APP_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM applications p WHERE p.client_id = $1"
);

pub(crate) const KEY_BY_DIGEST: &str = concat!(
    "SELECT ",
    key_cols!(),
    ", ",
    user_cols!(),
    " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.digest = $1"
);

/// The newest live access token of a live refresh token.
pub(crate) const NEWEST_LIVE_TOKEN: &str = "SELECT t.id, t.nonce, t.scopes, t.issued_at, \
    t.expires_at, t.kid FROM access_tokens t \
    JOIN refresh_tokens r ON r.id = t.refresh_id JOIN account_accesses a ON a.id = r.access_id \
    WHERE t.refresh_id = $1 AND t.revoked_at IS NULL AND r.revoked_at IS NULL \
    AND a.revoked_at IS NULL ORDER BY t.issued_at DESC, t.id DESC LIMIT 1";

// ----- the statements of the hot writes, run by each backend in its own way -----

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
    (org_id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const INSERT_EVENT: &str = "INSERT INTO events \
    (transaction_id, org_id, user_id, event_id, event_key, params, received_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const MARK_USED: &str =
    "UPDATE access_tokens SET first_used_at = $2 WHERE id = $1 AND first_used_at IS NULL";

pub(crate) const INSERT_KEY_TOKEN: &str = "INSERT INTO access_tokens \
    (org_id, user_id, api_key_id, digest, nonce, scopes, issued_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

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

/// The audit record of an issuance names the token it issued.
pub(crate) fn naming_token(
    mut audit: grantry_core::store::audit::NewAudit,
    id: i64,
) -> grantry_core::store::audit::NewAudit {
    if let serde_json::Value::Object(m) = &mut audit.detail {
        m.insert("token".into(), id.into());
    }
    audit
}

/// A live refresh token with its live account access.
pub(crate) const REFRESH_BY_DIGEST: &str = "SELECT r.id AS r_id, r.scopes AS r_scopes, \
    r.created_at AS r_created_at, r.rotated_at AS r_rotated_at, \
    COALESCE(r.family_id, r.id) AS r_family, \
    a.id, a.org_id, a.app_id, a.user_id, a.created_by, a.scopes, a.created_at, \
    p.client_id AS p_client_id, u.username AS u_username \
    FROM refresh_tokens r JOIN account_accesses a ON a.id = r.access_id \
    JOIN applications p ON p.id = a.app_id JOIN users u ON u.id = a.user_id \
    WHERE r.digest = $1 AND r.revoked_at IS NULL AND a.revoked_at IS NULL";

/// Every list of an org, with its size.
pub(crate) const LISTS_OF_ORG: &str = "SELECT l.id, l.name, l.created_at, \
    (SELECT COUNT(*) FROM contacts c WHERE c.list_id = l.id) AS size FROM lists l \
    WHERE l.org_id = $1 ORDER BY l.id";

/// One list of an org, with its size.
pub(crate) const LIST_BY_ID: &str = "SELECT l.id, l.name, l.created_at, \
    (SELECT COUNT(*) FROM contacts c WHERE c.list_id = l.id) AS size FROM lists l \
    WHERE l.org_id = $1 AND l.id = $2";

pub(crate) const CONTACT_COLS: &str = "id, list_id, email, columns, created_at, updated_at";

macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        mod rows {
            use std::collections::BTreeMap;

            use sqlx::Row;

            use grantry_core::store::audit::AuditEvent;
            use grantry_core::model::*;
            use grantry_core::{GrantSet, StoreError, Timestamp};

            use crate::common::backend_err;

            type DbRow = <$db as sqlx::Database>::Row;

            pub(super) fn user(r: &DbRow) -> Result<User, StoreError> {
                let kind: String = r.try_get("u_kind").map_err(backend_err)?;
                let role: String = r.try_get("u_role").map_err(backend_err)?;
                Ok(User {
                    id: r.try_get("u_id").map_err(backend_err)?,
                    org_id: r.try_get("u_org_id").map_err(backend_err)?,
                    username: r.try_get("u_username").map_err(backend_err)?,
                    email: r.try_get("u_email").map_err(backend_err)?,
                    kind: UserKind::parse(&kind).ok_or_else(|| backend_err(format!("bad user kind {kind}")))?,
                    role: Role::parse(&role).ok_or_else(|| backend_err(format!("bad role {role}")))?,
                    grants: GrantSet::from_bits(r.try_get("u_grants").map_err(backend_err)?),
                    key_id: r.try_get("u_key_id").map_err(backend_err)?,
                    principal: r.try_get("u_principal").map_err(backend_err)?,
                    disabled: r
                        .try_get::<Option<i64>, _>("u_disabled_at")
                        .map_err(backend_err)?
                        .is_some(),
                    created_at: Timestamp(r.try_get("u_created_at").map_err(backend_err)?),
                })
            }

            pub(super) fn app(r: &DbRow) -> Result<Application, StoreError> {
                let uris: String = r.try_get("p_redirect_uris").map_err(backend_err)?;
                Ok(Application {
                    id: r.try_get("p_id").map_err(backend_err)?,
                    org_id: r.try_get("p_org_id").map_err(backend_err)?,
                    client_id: r.try_get("p_client_id").map_err(backend_err)?,
                    name: r.try_get("p_name").map_err(backend_err)?,
                    description: r.try_get("p_description").map_err(backend_err)?,
                    scopes: GrantSet::from_bits(r.try_get("p_scopes").map_err(backend_err)?),
                    redirect_uris: serde_json::from_str(&uris).map_err(backend_err)?,
                    public: r.try_get("p_public").map_err(backend_err)?,
                    rotate_refresh_tokens: r.try_get("p_rotate").map_err(backend_err)?,
                    token_format: {
                        let f: String = r.try_get("p_token_format").map_err(backend_err)?;
                        grantry_core::model::TokenFormat::parse(&f)
                            .ok_or_else(|| backend_err(format!("bad token format {f}")))?
                    },
                    created_at: Timestamp(r.try_get("p_created_at").map_err(backend_err)?),
                })
            }

            pub(super) fn org(r: &DbRow) -> Result<Org, StoreError> {
                Ok(Org {
                    id: r.try_get("id").map_err(backend_err)?,
                    name: r.try_get("name").map_err(backend_err)?,
                    created_at: Timestamp(r.try_get("created_at").map_err(backend_err)?),
                })
            }

            pub(super) fn access(r: &DbRow) -> Result<AccountAccess, StoreError> {
                Ok(AccountAccess {
                    id: r.try_get("id").map_err(backend_err)?,
                    org_id: r.try_get("org_id").map_err(backend_err)?,
                    app_id: r.try_get("app_id").map_err(backend_err)?,
                    user_id: r.try_get("user_id").map_err(backend_err)?,
                    created_by: r.try_get("created_by").map_err(backend_err)?,
                    scopes: GrantSet::from_bits(r.try_get("scopes").map_err(backend_err)?),
                    created_at: Timestamp(r.try_get("created_at").map_err(backend_err)?),
                })
            }

            pub(super) fn code(r: &DbRow) -> Result<AuthCode, StoreError> {
                Ok(AuthCode {
                    id: r.try_get("id").map_err(backend_err)?,
                    org_id: r.try_get("org_id").map_err(backend_err)?,
                    app_id: r.try_get("app_id").map_err(backend_err)?,
                    user_id: r.try_get("user_id").map_err(backend_err)?,
                    redirect_uri: r.try_get("redirect_uri").map_err(backend_err)?,
                    redirect_uri_given: r.try_get("redirect_uri_given").map_err(backend_err)?,
                    scopes: GrantSet::from_bits(r.try_get("scopes").map_err(backend_err)?),
                    code_challenge: r.try_get("code_challenge").map_err(backend_err)?,
                    created_at: Timestamp(r.try_get("created_at").map_err(backend_err)?),
                    expires_at: Timestamp(r.try_get("expires_at").map_err(backend_err)?),
                })
            }

            pub(super) fn audit(r: &DbRow) -> Result<AuditEvent, StoreError> {
                let detail: String = r.try_get("detail").map_err(backend_err)?;
                Ok(AuditEvent {
                    id: r.try_get("id").map_err(backend_err)?,
                    org_id: r.try_get("org_id").map_err(backend_err)?,
                    at: Timestamp(r.try_get("at").map_err(backend_err)?),
                    actor: r.try_get("actor").map_err(backend_err)?,
                    action: r.try_get("action").map_err(backend_err)?,
                    target: r.try_get("target").map_err(backend_err)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            }

            pub(super) fn api_key(r: &DbRow) -> Result<ApiKey, StoreError> {
                let slot: Option<i64> = r.try_get("k_slot").map_err(backend_err)?;
                let deleted: Option<i64> = r.try_get("k_deleted_at").map_err(backend_err)?;
                let stops: Option<i64> = r.try_get("k_stops_at").map_err(backend_err)?;
                Ok(ApiKey {
                    id: r.try_get("k_id").map_err(backend_err)?,
                    user_id: r.try_get("k_user_id").map_err(backend_err)?,
                    slot: slot.map(|s| s as u8),
                    created_at: Timestamp(r.try_get("k_created_at").map_err(backend_err)?),
                    deleted_at: deleted.map(Timestamp),
                    stops_at: stops.map(Timestamp),
                })
            }

            pub(super) fn event(r: &DbRow) -> Result<Event, StoreError> {
                let params: String = r.try_get("params").map_err(backend_err)?;
                Ok(Event {
                    transaction_id: r.try_get("transaction_id").map_err(backend_err)?,
                    org_id: r.try_get("org_id").map_err(backend_err)?,
                    user_id: r.try_get::<Option<i64>, _>("user_id").map_err(backend_err)?.unwrap_or(0),
                    event_id: r.try_get("event_id").map_err(backend_err)?,
                    event_key: r.try_get("event_key").map_err(backend_err)?,
                    params: serde_json::from_str(&params).map_err(backend_err)?,
                    received_at: Timestamp(r.try_get("received_at").map_err(backend_err)?),
                })
            }

            pub(super) fn contact(r: &DbRow) -> Result<Contact, StoreError> {
                let cols: String = r.try_get("columns").map_err(backend_err)?;
                Ok(Contact {
                    id: r.try_get("id").map_err(backend_err)?,
                    list_id: r.try_get("list_id").map_err(backend_err)?,
                    email: r.try_get("email").map_err(backend_err)?,
                    columns: serde_json::from_str::<BTreeMap<String, String>>(&cols).map_err(backend_err)?,
                    created_at: Timestamp(r.try_get("created_at").map_err(backend_err)?),
                    updated_at: Timestamp(r.try_get("updated_at").map_err(backend_err)?),
                })
            }
        }

        /// Commits a write transaction and brings this process's credential cache up to date
        /// with it: the authorization epoch is read inside the transaction, so it counts this
        /// write's own narrowing changes as the triggers of migration 0005 define them, and
        /// the cache is dropped when it moved. What drops the cache is decided in one place,
        /// the triggers, for this process and every other alike.
        async fn commit(
            mut tx: sqlx::Transaction<'static, $db>,
            caches: &crate::cache::Caches,
        ) -> Result<(), grantry_core::StoreError> {
            let started = tokio::time::Instant::now();
            let epoch: i64 = sqlx::query_scalar(crate::cache::EPOCH_SQL)
                .fetch_one(&mut *tx)
                .await
                .map_err(crate::common::backend_err)?;
            tx.commit().await.map_err(crate::common::backend_err)?;
            caches.observe(epoch, started);
            Ok(())
        }

        async fn insert_audit(
            conn: &mut <$db as sqlx::Database>::Connection,
            a: &grantry_core::store::audit::NewAudit,
        ) -> Result<(), grantry_core::StoreError> {
            sqlx::query(crate::common::INSERT_AUDIT)
            .bind(a.org_id)
            .bind(a.at.0)
            .bind(&a.actor)
            .bind(a.action)
            .bind(&a.target)
            .bind(a.detail.to_string())
            .execute(&mut *conn)
            .await
            .map_err(crate::common::backend_err)?;
            Ok(())
        }

        async fn insert_user(
            conn: &mut <$db as sqlx::Database>::Connection,
            org: grantry_core::model::OrgId,
            u: &grantry_core::store::NewUser,
            principal: bool,
        ) -> Result<i64, grantry_core::StoreError> {
            use sqlx::Row;
            let row = sqlx::query(
                "INSERT INTO users (org_id, username, email, kind, role, grants, password_hash, \
                 key_id, principal, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 RETURNING id",
            )
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
            .fetch_one(&mut *conn)
            .await
            .map_err(crate::common::conflict_or("user"))?;
            row.try_get("id").map_err(crate::common::backend_err)
        }

        async fn insert_refresh_token(
            conn: &mut <$db as sqlx::Database>::Connection,
            access: i64,
            digest: &grantry_core::credential::Digest,
            scopes: grantry_core::GrantSet,
            at: grantry_core::Timestamp,
        ) -> Result<i64, grantry_core::StoreError> {
            use sqlx::Row;
            let row = sqlx::query(
                "INSERT INTO refresh_tokens (access_id, digest, scopes, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(access)
            .bind(digest.as_bytes())
            .bind(scopes.bits())
            .bind(at.0)
            .fetch_one(&mut *conn)
            .await
            .map_err(crate::common::conflict_or("refresh token"))?;
            row.try_get("id").map_err(crate::common::backend_err)
        }

        /// Revokes every refresh token of a rotation family (`family` is its first token's id)
        /// and the access tokens derived from them.
        async fn revoke_family(
            conn: &mut <$db as sqlx::Database>::Connection,
            family: i64,
            at: grantry_core::Timestamp,
        ) -> Result<(), grantry_core::StoreError> {
            sqlx::query(
                "UPDATE access_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND refresh_id IN \
                 (SELECT id FROM refresh_tokens WHERE id = $1 OR family_id = $1)",
            )
            .bind(family)
            .bind(at.0)
            .execute(&mut *conn)
            .await
            .map_err(crate::common::backend_err)?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE (id = $1 OR family_id = $1) AND revoked_at IS NULL")
                .bind(family)
                .bind(at.0)
                .execute(&mut *conn)
                .await
                .map_err(crate::common::backend_err)?;
            Ok(())
        }

        /// Takes the API user's row lock (PostgreSQL; SQLite's write transaction is already
        /// exclusive) so key generation and deletion for one user run one at a time.
        async fn lock_api_user(
            conn: &mut <$db as sqlx::Database>::Connection,
            user: grantry_core::model::UserId,
        ) -> Result<(), grantry_core::StoreError> {
            let n = sqlx::query("UPDATE users SET grants = grants WHERE id = $1 AND kind = 'api'")
                .bind(user)
                .execute(&mut *conn)
                .await
                .map_err(crate::common::backend_err)?
                .rows_affected();
            if n == 0 {
                return Err(grantry_core::StoreError::NotFound("API user"));
            }
            Ok(())
        }

        fn user_from_new(
            id: i64,
            org: grantry_core::model::OrgId,
            u: grantry_core::store::NewUser,
            principal: bool,
        ) -> grantry_core::model::User {
            grantry_core::model::User {
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
                created_at: u.created_at,
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::DirectoryStore for $store {
            async fn create_org(
                &self,
                name: &str,
                admin: grantry_core::store::NewUser,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(grantry_core::model::Org, grantry_core::model::User), grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let row = sqlx::query("INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at")
                    .bind(name)
                    .bind(admin.created_at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_or("organization"))?;
                let org = rows::org(&row)?;
                let uid = insert_user(&mut tx, org.id, &admin, true).await?;
                let mut audit = audit;
                audit.org_id = Some(org.id);
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                let id = org.id;
                Ok((org, user_from_new(uid, id, admin, true)))
            }

            async fn org_by_name(&self, name: &str) -> Result<Option<grantry_core::model::Org>, grantry_core::StoreError> {
                sqlx::query("SELECT id, name, created_at FROM orgs WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?
                    .map(|r| rows::org(&r))
                    .transpose()
            }

            async fn count_orgs(&self) -> Result<i64, grantry_core::StoreError> {
                use sqlx::Row;
                let r = sqlx::query("SELECT COUNT(*) AS n FROM orgs")
                    .fetch_one(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?;
                r.try_get("n").map_err(crate::common::backend_err)
            }

            async fn create_user(
                &self,
                org: grantry_core::model::OrgId,
                user: grantry_core::store::NewUser,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<grantry_core::model::User, grantry_core::StoreError> {
                let mut tx = self.begin_write().await?;
                let id = insert_user(&mut tx, org, &user, false).await?;
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                Ok(user_from_new(id, org, user, false))
            }

            async fn user_by_username(
                &self,
                org: grantry_core::model::OrgId,
                username: &str,
            ) -> Result<Option<grantry_core::model::User>, grantry_core::StoreError> {
                let sql = format!("SELECT {} FROM users u WHERE u.org_id = $1 AND u.username = $2", crate::common::USER_COLS);
                sqlx::query(&sql)
                    .bind(org)
                    .bind(username)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?
                    .map(|r| rows::user(&r))
                    .transpose()
            }

            async fn user_by_id(&self, id: grantry_core::model::UserId) -> Result<Option<grantry_core::model::User>, grantry_core::StoreError> {
                let c = self.caches();
                let found = crate::cache::cached(c, &c.users, id, || async move {
                    sqlx::query(crate::common::USER_BY_ID)
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(crate::common::backend_err)?
                        .map(|r| rows::user(&r).map(std::sync::Arc::new))
                        .transpose()
                })
                .await?;
                Ok(found.map(|u| (*u).clone()))
            }

            async fn password_hash(&self, user: grantry_core::model::UserId) -> Result<Option<String>, grantry_core::StoreError> {
                use sqlx::Row;
                let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
                    .bind(user)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?;
                match row {
                    Some(r) => r.try_get("password_hash").map_err(crate::common::backend_err),
                    None => Ok(None),
                }
            }

            async fn principal_admin(&self, org: grantry_core::model::OrgId) -> Result<Option<grantry_core::model::User>, grantry_core::StoreError> {
                let sql = format!("SELECT {} FROM users u WHERE u.org_id = $1 AND u.principal", crate::common::USER_COLS);
                sqlx::query(&sql)
                    .bind(org)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?
                    .map(|r| rows::user(&r))
                    .transpose()
            }

            async fn set_user_grants(
                &self,
                user: grantry_core::model::UserId,
                grants: grantry_core::GrantSet,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(), grantry_core::StoreError> {
                let mut tx = self.begin_write().await?;
                let n = sqlx::query("UPDATE users SET grants = $2 WHERE id = $1")
                    .bind(user)
                    .bind(grants.bits())
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::common::backend_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(grantry_core::StoreError::NotFound("user"));
                }
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await
            }

            async fn set_user_disabled(
                &self,
                user: grantry_core::model::UserId,
                disabled: bool,
                at: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(), grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let n = sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1")
                    .bind(user)
                    .bind(disabled.then_some(at.0))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(grantry_core::StoreError::NotFound("user"));
                }
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await
            }

            async fn delete_user(
                &self,
                user: grantry_core::model::UserId,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(), grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let n = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                if n == 0 {
                    return Err(grantry_core::StoreError::NotFound("user"));
                }
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::SessionStore for $store {
            async fn create_session(
                &self,
                digest: grantry_core::credential::Digest,
                user: grantry_core::model::UserId,
                now: grantry_core::Timestamp,
                expires_at: grantry_core::Timestamp,
            ) -> Result<(), grantry_core::StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(digest.as_bytes())
                    .bind(user)
                    .bind(now.0)
                    .bind(expires_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(crate::common::backend_err)?;
                commit(tx, self.caches()).await
            }

            async fn session_user(
                &self,
                digest: &grantry_core::credential::Digest,
                now: grantry_core::Timestamp,
            ) -> Result<Option<grantry_core::model::User>, grantry_core::StoreError> {
                let sql = format!(
                    "SELECT {} FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.digest = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                    crate::common::USER_COLS
                );
                sqlx::query(&sql)
                    .bind(digest.as_bytes())
                    .bind(now.0)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?
                    .map(|r| rows::user(&r))
                    .transpose()
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::ClientStore for $store {
            async fn create_application(
                &self,
                app: grantry_core::store::NewApplication,
                secret: Option<grantry_core::credential::Digest>,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<grantry_core::model::Application, grantry_core::StoreError> {
                use crate::common::*;
                use sqlx::Row;
                let mut tx = self.begin_write().await?;
                let uris = serde_json::to_string(&app.redirect_uris).map_err(backend_err)?;
                let row = sqlx::query(
                    "INSERT INTO applications (org_id, client_id, name, description, scopes, \
                     redirect_uris, public, rotate_refresh_tokens, token_format, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
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
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict_or("application"))?;
                let id: i64 = row.try_get("id").map_err(backend_err)?;
                if let Some(d) = secret {
                    sqlx::query("INSERT INTO client_secrets (app_id, digest, created_at) VALUES ($1, $2, $3)")
                        .bind(id)
                        .bind(d.as_bytes())
                        .bind(app.created_at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                }
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                Ok(grantry_core::model::Application {
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
                })
            }

            async fn application_by_client_id(&self, client_id: &str) -> Result<Option<grantry_core::model::Application>, grantry_core::StoreError> {
                let c = self.caches();
                let found = crate::cache::cached(c, &c.apps, client_id.to_string(), || async move {
                    sqlx::query(crate::common::APP_BY_CLIENT_ID)
                        .bind(client_id)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(crate::common::backend_err)?
                        .map(|r| rows::app(&r).map(std::sync::Arc::new))
                        .transpose()
                })
                .await?;
                Ok(found.map(|a| (*a).clone()))
            }

            async fn rotate_client_secret(
                &self,
                app: grantry_core::model::AppId,
                secret: grantry_core::credential::Digest,
                now: grantry_core::Timestamp,
                old_expires_at: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(), grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE client_secrets SET expires_at = $2 WHERE app_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                )
                .bind(app)
                .bind(old_expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                sqlx::query("INSERT INTO client_secrets (app_id, digest, created_at) VALUES ($1, $2, $3)")
                    .bind(app)
                    .bind(secret.as_bytes())
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await
            }

            async fn client_secrets(
                &self,
                app: grantry_core::model::AppId,
                now: grantry_core::Timestamp,
            ) -> Result<Vec<grantry_core::credential::Digest>, grantry_core::StoreError> {
                use sqlx::Row;
                // Every secret of the application is cached with its end; the time test is
                // made here, so a cached list is right at any `now`.
                let c = self.caches();
                let all = crate::cache::cached(c, &c.secrets, app, || async move {
                    let rows = sqlx::query("SELECT digest, expires_at FROM client_secrets WHERE app_id = $1")
                        .bind(app)
                        .fetch_all(self.reader())
                        .await
                        .map_err(crate::common::backend_err)?;
                    let list = rows
                        .iter()
                        .map(|r| {
                            let b: Vec<u8> = r.try_get("digest").map_err(crate::common::backend_err)?;
                            let ends: Option<i64> = r.try_get("expires_at").map_err(crate::common::backend_err)?;
                            let d = grantry_core::credential::Digest::from_slice(&b)
                                .ok_or_else(|| crate::common::backend_err("client secret digest is not 32 bytes"))?;
                            Ok((d, ends))
                        })
                        .collect::<Result<Vec<_>, grantry_core::StoreError>>()?;
                    Ok::<_, grantry_core::StoreError>(Some(std::sync::Arc::new(list)))
                })
                .await?
                .unwrap_or_default();
                Ok(all
                    .iter()
                    .filter(|(_, ends)| ends.is_none_or(|e| e > now.0))
                    .map(|(d, _)| *d)
                    .collect())
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::AccountAccessStore for $store {
            async fn create_account_access(
                &self,
                org: grantry_core::model::OrgId,
                app: grantry_core::model::AppId,
                user: grantry_core::model::UserId,
                created_by: Option<grantry_core::model::UserId>,
                refresh_token: grantry_core::credential::Digest,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<grantry_core::model::AccountAccess, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let sql = format!(
                    "INSERT INTO account_accesses (org_id, app_id, user_id, created_by, scopes, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ACCESS_COLS}"
                );
                let row = sqlx::query(&sql)
                    .bind(org)
                    .bind(app)
                    .bind(user)
                    .bind(created_by)
                    .bind(grantry_core::GrantSet::all().bits())
                    .bind(audit.at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_or("account access"))?;
                let access = rows::access(&row)?;
                insert_refresh_token(&mut tx, access.id, &refresh_token, access.scopes, audit.at).await?;
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                Ok(access)
            }

            async fn grant_account_access(
                &self,
                consent: grantry_core::store::Consent,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(grantry_core::model::AccountAccess, i64), grantry_core::StoreError> {
                use crate::common::*;
                let grantry_core::store::Consent { org, app, user, scopes, refresh_token, code, access_token } = consent;
                let mut tx = self.begin_write().await?;
                // Create the pair's access or extend its live one (taking its row lock) in one
                // statement: concurrent first consents then queue on the new row (PostgreSQL)
                // instead of both inserting and all but one failing with a conflict.
                let sql = format!(
                    "INSERT INTO account_accesses (org_id, app_id, user_id, created_by, scopes, created_at) \
                     VALUES ($1, $2, $3, NULL, $4, $5) \
                     ON CONFLICT (app_id, user_id) WHERE revoked_at IS NULL \
                     DO UPDATE SET scopes = account_accesses.scopes | excluded.scopes RETURNING {ACCESS_COLS}"
                );
                let row = sqlx::query(&sql)
                    .bind(org)
                    .bind(app)
                    .bind(user)
                    .bind(scopes.bits())
                    .bind(audit.at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_or("account access"))?;
                let access = rows::access(&row)?;
                let rid = insert_refresh_token(&mut tx, access.id, &refresh_token, scopes, audit.at).await?;
                if let Some(code) = code {
                    sqlx::query("UPDATE auth_codes SET refresh_id = $2 WHERE id = $1")
                        .bind(code)
                        .bind(rid)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                }
                sqlx::query(
                    "INSERT INTO access_tokens (org_id, user_id, app_id, access_id, refresh_id, digest, nonce, scopes, issued_at, expires_at, kid) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(org)
                .bind(user)
                .bind(app)
                .bind(access.id)
                .bind(rid)
                .bind(access_token.digest.as_bytes())
                .bind(&access_token.nonce)
                .bind(access_token.scopes.bits())
                .bind(access_token.issued_at.0)
                .bind(access_token.expires_at.0)
                .bind(&access_token.kid)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                Ok((access, rid))
            }

            async fn create_auth_code(&self, code: grantry_core::store::NewAuthCode) -> Result<(), grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO auth_codes (digest, org_id, app_id, user_id, redirect_uri, redirect_uri_given, scopes, \
                     code_challenge, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
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
                commit(tx, self.caches()).await
            }

            async fn redeem_auth_code(
                &self,
                digest: &grantry_core::credential::Digest,
                now: grantry_core::Timestamp,
            ) -> Result<grantry_core::store::Redemption, grantry_core::StoreError> {
                use crate::common::*;
                use grantry_core::store::Redemption;
                use sqlx::Row;
                let mut tx = self.begin_write().await?;
                let sql = format!(
                    "UPDATE auth_codes SET used_at = $2 WHERE digest = $1 AND used_at IS NULL RETURNING {CODE_COLS}"
                );
                if let Some(r) = sqlx::query(&sql)
                    .bind(digest.as_bytes())
                    .bind(now.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend_err)?
                {
                    let code = rows::code(&r)?;
                    commit(tx, self.caches()).await?;
                    return Ok(Redemption::Fresh(code));
                }
                // Record the reuse (and take the code's row lock while revoking).
                let sql = format!(
                    "UPDATE auth_codes SET reused_at = COALESCE(reused_at, $2) WHERE digest = $1 RETURNING {CODE_COLS}"
                );
                let Some(r) = sqlx::query(&sql)
                    .bind(digest.as_bytes())
                    .bind(now.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend_err)?
                else {
                    return Ok(Redemption::Unknown);
                };
                let code = rows::code(&r)?;
                let refresh: Option<i64> = r.try_get("refresh_id").map_err(backend_err)?;
                if let Some(rid) = refresh {
                    // The code's refresh token heads its rotation family: its successors were
                    // issued from the code too.
                    revoke_family(&mut tx, rid, now).await?;
                }
                commit(tx, self.caches()).await?;
                Ok(Redemption::Reused(code))
            }

            async fn account_access(
                &self,
                app: grantry_core::model::AppId,
                user: grantry_core::model::UserId,
            ) -> Result<Option<grantry_core::model::AccountAccess>, grantry_core::StoreError> {
                let sql = format!(
                    "SELECT {} FROM account_accesses WHERE app_id = $1 AND user_id = $2 AND revoked_at IS NULL",
                    crate::common::ACCESS_COLS
                );
                sqlx::query(&sql)
                    .bind(app)
                    .bind(user)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?
                    .map(|r| rows::access(&r))
                    .transpose()
            }

            async fn account_accesses(
                &self,
                org: grantry_core::model::OrgId,
            ) -> Result<Vec<grantry_core::store::AccessSummary>, grantry_core::StoreError> {
                use crate::common::backend_err;
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT a.id, a.org_id, a.app_id, a.user_id, a.created_by, a.scopes, a.created_at, \
                     p.client_id AS p_client_id, p.name AS p_name, u.username AS u_username, b.username AS b_username \
                     FROM account_accesses a JOIN applications p ON p.id = a.app_id JOIN users u ON u.id = a.user_id \
                     LEFT JOIN users b ON b.id = a.created_by \
                     WHERE a.org_id = $1 AND a.revoked_at IS NULL ORDER BY a.created_at, a.id",
                )
                .bind(org)
                .fetch_all(self.reader())
                .await
                .map_err(backend_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(grantry_core::store::AccessSummary {
                            access: rows::access(r)?,
                            client_id: r.try_get("p_client_id").map_err(backend_err)?,
                            application: r.try_get("p_name").map_err(backend_err)?,
                            username: r.try_get("u_username").map_err(backend_err)?,
                            created_by: r.try_get("b_username").map_err(backend_err)?,
                        })
                    })
                    .collect()
            }

            async fn revoke_account_access(
                &self,
                access: grantry_core::model::AccessId,
                at: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<bool, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let n = sqlx::query("UPDATE account_accesses SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(access)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                sqlx::query("UPDATE access_tokens SET revoked_at = $2 WHERE access_id = $1 AND revoked_at IS NULL")
                    .bind(access)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE access_id = $1 AND revoked_at IS NULL")
                    .bind(access)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::TokenStore for $store {
            async fn revoke_token(
                &self,
                org: grantry_core::model::OrgId,
                digest: &grantry_core::credential::Digest,
                at: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<bool, grantry_core::StoreError> {
                use crate::common::*;
                use sqlx::Row;
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "UPDATE access_tokens SET revoked_at = $3 WHERE digest = $1 AND org_id = $2 AND revoked_at IS NULL",
                )
                .bind(digest.as_bytes())
                .bind(org)
                .bind(at.0)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?
                .rows_affected();
                let mut revoked = n == 1;
                if !revoked {
                    let refresh = sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at = $3 WHERE digest = $1 AND revoked_at IS NULL \
                         AND access_id IN (SELECT id FROM account_accesses WHERE org_id = $2) \
                         RETURNING COALESCE(family_id, id) AS family",
                    )
                    .bind(digest.as_bytes())
                    .bind(org)
                    .bind(at.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                    if let Some(r) = refresh {
                        // The whole grant: the token, its rotated relatives, their access tokens.
                        let family: i64 = r.try_get("family").map_err(backend_err)?;
                        revoke_family(&mut tx, family, at).await?;
                        revoked = true;
                    }
                }
                if revoked {
                    insert_audit(&mut tx, &audit).await?;
                }
                commit(tx, self.caches()).await?;
                Ok(revoked)
            }

            async fn rotate_refresh_token(
                &self,
                old: i64,
                digest: grantry_core::credential::Digest,
                nonce: Vec<u8>,
                now: grantry_core::Timestamp,
            ) -> Result<Option<i64>, grantry_core::StoreError> {
                use crate::common::*;
                use sqlx::Row;
                let mut tx = self.begin_write().await?;
                let Some(r) = sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $2 WHERE id = $1 AND rotated_at IS NULL AND revoked_at IS NULL \
                     RETURNING access_id, scopes, COALESCE(family_id, id) AS family",
                )
                .bind(old)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend_err)?
                else {
                    return Ok(None);
                };
                let access: i64 = r.try_get("access_id").map_err(backend_err)?;
                let scopes: i64 = r.try_get("scopes").map_err(backend_err)?;
                let family: i64 = r.try_get("family").map_err(backend_err)?;
                let row = sqlx::query(
                    "INSERT INTO refresh_tokens (access_id, digest, scopes, family_id, parent_id, derive_nonce, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(access)
                .bind(digest.as_bytes())
                .bind(scopes)
                .bind(family)
                .bind(old)
                .bind(&nonce)
                .bind(now.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend_err)?;
                let id: i64 = row.try_get("id").map_err(backend_err)?;
                commit(tx, self.caches()).await?;
                Ok(Some(id))
            }

            async fn refresh_successor(&self, parent: i64) -> Result<Option<(i64, Vec<u8>)>, grantry_core::StoreError> {
                use sqlx::Row;
                let Some(r) = sqlx::query(
                    "SELECT id, derive_nonce FROM refresh_tokens WHERE parent_id = $1 AND revoked_at IS NULL",
                )
                .bind(parent)
                .fetch_optional(self.reader())
                .await
                .map_err(crate::common::backend_err)?
                else {
                    return Ok(None);
                };
                let id: i64 = r.try_get("id").map_err(crate::common::backend_err)?;
                let nonce: Option<Vec<u8>> = r.try_get("derive_nonce").map_err(crate::common::backend_err)?;
                Ok(nonce.map(|n| (id, n)))
            }

            async fn revoke_refresh_family(
                &self,
                family: i64,
                at: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(), grantry_core::StoreError> {
                let mut tx = self.begin_write().await?;
                revoke_family(&mut tx, family, at).await?;
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await
            }

            async fn refresh_token(
                &self,
                digest: &grantry_core::credential::Digest,
            ) -> Result<Option<grantry_core::store::RefreshTokenRecord>, grantry_core::StoreError> {
                let c = self.caches();
                let found = crate::cache::cached(c, &c.refresh, digest.0, || async move {
                    Ok(self.load_refresh_token(digest).await?.map(std::sync::Arc::new))
                })
                .await?;
                Ok(found.map(|r| (*r).clone()))
            }

            async fn refresh_access_token(
                &self,
                refresh: i64,
                decide: &grantry_core::store::DecideReissue<'_>,
                fresh: grantry_core::store::NewAccessToken,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<grantry_core::store::RefreshOutcome, grantry_core::StoreError> {
                use grantry_core::store::{RefreshOutcome, Reissue};
                // Fast path, no write: inside the window the answer is decided by the newest
                // live token, which a read (or the cache) can see. Only an issuance takes the
                // lock below (and decides again under it). A cached newest token can only be
                // older than the real one when another instance issued meanwhile; then the
                // decision is "issue" and the locked path below finds the real one.
                let c = self.caches();
                let ticket = c.ticket();
                let newest = crate::cache::cached(c, &c.newest, refresh, || async move {
                    Ok(self.load_newest(refresh).await?.map(std::sync::Arc::new))
                })
                .await?;
                if let Some(t) = &newest {
                    match decide(Some(t)) {
                        Reissue::Reuse => return Ok(RefreshOutcome::Reused((**t).clone())),
                        Reissue::Reject { retry_at } => return Ok(RefreshOutcome::Rejected { retry_at }),
                        Reissue::Issue => {}
                    }
                }
                let seen = newest.as_ref().map(|t| t.id);
                let outcome = self.refresh_locked(refresh, decide, fresh, audit, seen).await?;
                if let (Some(ticket), RefreshOutcome::Issued(t) | RefreshOutcome::Reused(t)) = (ticket, &outcome) {
                    c.put(&c.newest, ticket, refresh, std::sync::Arc::new(t.clone()));
                }
                Ok(outcome)
            }

            async fn access_token(
                &self,
                digest: &grantry_core::credential::Digest,
            ) -> Result<Option<grantry_core::store::BearerRecord>, grantry_core::StoreError> {
                use crate::common::*;
                use sqlx::Row;
                let c = self.caches();
                let found = crate::cache::cached(c, &c.bearer, digest.0, || async move {
                let Some(r) = sqlx::query(BEARER_BY_DIGEST)
                    .bind(digest.as_bytes())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(backend_err)?
                else {
                    return Ok(None);
                };
                let t_revoked: Option<i64> = r.try_get("t_revoked_at").map_err(backend_err)?;
                let a_revoked: Option<i64> = r.try_get("a_revoked_at").map_err(backend_err)?;
                let r_revoked: Option<i64> = r.try_get("r_revoked_at").map_err(backend_err)?;
                let first: Option<i64> = r.try_get("t_first_used_at").map_err(backend_err)?;
                let app_id: Option<i64> = r.try_get("t_app_id").map_err(backend_err)?;
                let key_stops: Option<i64> = r.try_get("k_stops_at").map_err(backend_err)?;
                Ok(Some(grantry_core::store::BearerRecord {
                    token_id: r.try_get("t_id").map_err(backend_err)?,
                    scopes: grantry_core::GrantSet::from_bits(r.try_get("t_scopes").map_err(backend_err)?),
                    issued_at: grantry_core::Timestamp(r.try_get("t_issued_at").map_err(backend_err)?),
                    expires_at: grantry_core::Timestamp(r.try_get("t_expires_at").map_err(backend_err)?),
                    revoked: t_revoked.is_some() || a_revoked.is_some() || r_revoked.is_some(),
                    first_used: first.is_some(),
                    user: rows::user(&r)?,
                    app: if app_id.is_some() { Some(rows::app(&r)?) } else { None },
                    key_stops_at: key_stops.map(grantry_core::Timestamp),
                }.into()))
                })
                .await?;
                Ok(found.map(|b| (*b).clone()))
            }

            async fn mark_access_token_used(
                &self,
                digest: &grantry_core::credential::Digest,
                token: i64,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<(), grantry_core::StoreError> {
                let c = self.caches();
                let ticket = c.ticket();
                self.mark_used(token, audit).await?;
                // The cached record now says "used", so later calls skip this write.
                if let (Some(ticket), Some(rec)) = (ticket, c.bearer.get(&digest.0)) {
                    let mut rec = (*rec).clone();
                    rec.first_used = true;
                    c.put(&c.bearer, ticket, digest.0, std::sync::Arc::new(rec));
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::ApiKeyStore for $store {
            async fn generate_api_key(
                &self,
                user: grantry_core::model::UserId,
                digest: grantry_core::credential::Digest,
                now: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<grantry_core::model::ApiKey, grantry_core::StoreError> {
                use crate::common::*;
                use sqlx::Row;
                let mut tx = self.begin_write().await?;
                lock_api_user(&mut tx, user).await?;
                let taken: Vec<i64> = sqlx::query("SELECT slot FROM api_keys WHERE user_id = $1 AND slot IS NOT NULL")
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(backend_err)?
                    .iter()
                    .map(|r| r.try_get::<i64, _>("slot"))
                    .collect::<Result<_, _>>()
                    .map_err(backend_err)?;
                let Some(slot) = [1i64, 2].into_iter().find(|s| !taken.contains(s)) else {
                    return Err(grantry_core::StoreError::Conflict("secret key"));
                };
                let row = sqlx::query("INSERT INTO api_keys (user_id, slot, digest, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                    .bind(user)
                    .bind(slot)
                    .bind(digest.as_bytes())
                    .bind(now.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_or("secret key"))?;
                let id: i64 = row.try_get("id").map_err(backend_err)?;
                let mut audit = audit;
                match &mut audit.detail {
                    serde_json::Value::Object(m) => {
                        m.insert("slot".into(), slot.into());
                    }
                    d => *d = serde_json::json!({"slot": slot}),
                }
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                Ok(grantry_core::model::ApiKey {
                    id,
                    user_id: user,
                    slot: Some(slot as u8),
                    created_at: now,
                    deleted_at: None,
                    stops_at: None,
                })
            }

            async fn delete_api_key(
                &self,
                user: grantry_core::model::UserId,
                slot: u8,
                now: grantry_core::Timestamp,
                stops_at: grantry_core::Timestamp,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<Option<grantry_core::store::DeletedKey>, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                lock_api_user(&mut tx, user).await?;
                let sql = format!("SELECT {KEY_COLS} FROM api_keys k WHERE k.user_id = $1 AND k.slot = $2");
                let Some(row) = sqlx::query(&sql)
                    .bind(user)
                    .bind(slot as i64)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend_err)?
                else {
                    return Ok(None);
                };
                let mut key = rows::api_key(&row)?;
                sqlx::query("UPDATE api_keys SET slot = NULL, deleted_at = $2, stops_at = $3 WHERE id = $1")
                    .bind(key.id)
                    .bind(now.0)
                    .bind(stops_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                let promoted = slot == 1
                    && sqlx::query("UPDATE api_keys SET slot = 1 WHERE user_id = $1 AND slot = 2")
                        .bind(user)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected()
                        == 1;
                let mut audit = audit;
                if let serde_json::Value::Object(m) = &mut audit.detail {
                    m.insert("promoted".into(), promoted.into());
                }
                insert_audit(&mut tx, &audit).await?;
                commit(tx, self.caches()).await?;
                key.slot = None;
                key.deleted_at = Some(now);
                key.stops_at = Some(stops_at);
                Ok(Some(grantry_core::store::DeletedKey { key, promoted }))
            }

            async fn api_keys(
                &self,
                user: grantry_core::model::UserId,
                now: grantry_core::Timestamp,
            ) -> Result<Vec<grantry_core::model::ApiKey>, grantry_core::StoreError> {
                let sql = format!(
                    "SELECT {} FROM api_keys k WHERE k.user_id = $1 AND (k.slot IS NOT NULL OR k.stops_at > $2) \
                     ORDER BY k.slot IS NULL, k.slot, k.id",
                    crate::common::KEY_COLS
                );
                let rows = sqlx::query(&sql)
                    .bind(user)
                    .bind(now.0)
                    .fetch_all(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?;
                rows.iter().map(rows::api_key).collect()
            }

            async fn api_key_by_digest(
                &self,
                digest: &grantry_core::credential::Digest,
            ) -> Result<Option<(grantry_core::model::ApiKey, grantry_core::model::User)>, grantry_core::StoreError> {
                let c = self.caches();
                let found = crate::cache::cached(c, &c.api_keys, digest.0, || async move {
                    let Some(r) = sqlx::query(crate::common::KEY_BY_DIGEST)
                        .bind(digest.as_bytes())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(crate::common::backend_err)?
                    else {
                        return Ok(None);
                    };
                    Ok(Some(std::sync::Arc::new((rows::api_key(&r)?, rows::user(&r)?))))
                })
                .await?;
                Ok(found.map(|k| (*k).clone()))
            }

            async fn issue_key_token(
                &self,
                key: &grantry_core::model::ApiKey,
                user: &grantry_core::model::User,
                token: grantry_core::store::NewAccessToken,
                audit: grantry_core::store::audit::NewAudit,
            ) -> Result<i64, grantry_core::StoreError> {
                self.insert_key_token(key.id, user.org_id, user.id, token, audit).await
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::DataStore for $store {
            async fn create_list(
                &self,
                org: grantry_core::model::OrgId,
                name: &str,
                now: grantry_core::Timestamp,
            ) -> Result<grantry_core::model::List, grantry_core::StoreError> {
                use crate::common::*;
                use sqlx::Row;
                let mut tx = self.begin_write().await?;
                let row = sqlx::query("INSERT INTO lists (org_id, name, created_at) VALUES ($1, $2, $3) RETURNING id")
                    .bind(org)
                    .bind(name)
                    .bind(now.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_or("database"))?;
                commit(tx, self.caches()).await?;
                Ok(grantry_core::model::List {
                    id: row.try_get("id").map_err(backend_err)?,
                    name: name.to_string(),
                    size: 0,
                    created_at: now,
                })
            }

            async fn lists(&self, org: grantry_core::model::OrgId) -> Result<Vec<grantry_core::model::List>, grantry_core::StoreError> {
                self.lists_of(org).await
            }

            async fn list(&self, org: grantry_core::model::OrgId, id: i64) -> Result<Option<grantry_core::model::List>, grantry_core::StoreError> {
                self.list_by_id(org, id).await
            }

            async fn delete_list(&self, org: grantry_core::model::OrgId, id: i64) -> Result<bool, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM contacts WHERE list_id = $1 AND org_id = $2")
                    .bind(id)
                    .bind(org)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                let n = sqlx::query("DELETE FROM lists WHERE id = $1 AND org_id = $2")
                    .bind(id)
                    .bind(org)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                commit(tx, self.caches()).await?;
                Ok(n == 1)
            }

            async fn add_contact(
                &self,
                org: grantry_core::model::OrgId,
                list: i64,
                email: &str,
                columns: &std::collections::BTreeMap<String, String>,
                now: grantry_core::Timestamp,
            ) -> Result<grantry_core::model::Contact, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let exists = sqlx::query("SELECT id FROM lists WHERE id = $1 AND org_id = $2")
                    .bind(list)
                    .bind(org)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if exists.is_none() {
                    return Err(grantry_core::StoreError::NotFound("database"));
                }
                let sql = format!(
                    "INSERT INTO contacts (org_id, list_id, email, email_norm, columns, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {CONTACT_COLS}"
                );
                let row = sqlx::query(&sql)
                    .bind(org)
                    .bind(list)
                    .bind(email)
                    .bind(email.to_lowercase())
                    .bind(serde_json::to_string(columns).map_err(backend_err)?)
                    .bind(now.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match &e {
                        // The list was deleted after the check above (PostgreSQL).
                        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                            grantry_core::StoreError::NotFound("database")
                        }
                        _ => conflict_or("contact")(e),
                    })?;
                let c = rows::contact(&row)?;
                commit(tx, self.caches()).await?;
                Ok(c)
            }

            async fn contact(
                &self,
                org: grantry_core::model::OrgId,
                list: i64,
                key: grantry_core::store::ContactKey<'_>,
            ) -> Result<Option<grantry_core::model::Contact>, grantry_core::StoreError> {
                use grantry_core::store::ContactKey;
                let base = format!("SELECT {} FROM contacts WHERE org_id = $1 AND list_id = $2", crate::common::CONTACT_COLS);
                let clause = match key {
                    ContactKey::Id(_) => "id = $3",
                    ContactKey::Email(_) => "email_norm = $3",
                };
                let sql = format!("{base} AND {clause}");
                let q = sqlx::query(&sql).bind(org).bind(list);
                let q = match key {
                    ContactKey::Id(id) => q.bind(id),
                    ContactKey::Email(e) => q.bind(e.trim().to_lowercase()),
                };
                q.fetch_optional(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?
                    .map(|r| rows::contact(&r))
                    .transpose()
            }

            async fn contacts(
                &self,
                org: grantry_core::model::OrgId,
                list: i64,
                offset: i64,
                limit: i64,
            ) -> Result<Option<(Vec<grantry_core::model::Contact>, i64)>, grantry_core::StoreError> {
                use crate::common::*;
                let Some(l) = self.list(org, list).await? else {
                    return Ok(None);
                };
                let sql = format!(
                    "SELECT {CONTACT_COLS} FROM contacts WHERE org_id = $1 AND list_id = $2 ORDER BY id LIMIT $3 OFFSET $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(org)
                    .bind(list)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.reader())
                    .await
                    .map_err(backend_err)?;
                let items = rows.iter().map(rows::contact).collect::<Result<Vec<_>, _>>()?;
                Ok(Some((items, l.size)))
            }

            async fn update_contact(
                &self,
                org: grantry_core::model::OrgId,
                list: i64,
                id: i64,
                email: Option<&str>,
                columns: &std::collections::BTreeMap<String, String>,
                now: grantry_core::Timestamp,
            ) -> Result<Option<grantry_core::model::Contact>, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                // Read the row through an UPDATE, which takes its row lock (PostgreSQL) before
                // the merge below: concurrent updates of one contact then merge one after the
                // other instead of each overwriting the others' columns.
                let sql = format!(
                    "UPDATE contacts SET updated_at = $4 WHERE org_id = $1 AND list_id = $2 AND id = $3 \
                     RETURNING {CONTACT_COLS}"
                );
                let Some(row) = sqlx::query(&sql)
                    .bind(org)
                    .bind(list)
                    .bind(id)
                    .bind(now.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend_err)?
                else {
                    return Ok(None);
                };
                let mut c = rows::contact(&row)?;
                for (k, v) in columns {
                    c.columns.insert(k.clone(), v.clone());
                }
                if let Some(e) = email {
                    c.email = e.to_string();
                }
                c.updated_at = now;
                sqlx::query("UPDATE contacts SET email = $2, email_norm = $3, columns = $4, updated_at = $5 WHERE id = $1")
                    .bind(id)
                    .bind(&c.email)
                    .bind(c.email.to_lowercase())
                    .bind(serde_json::to_string(&c.columns).map_err(backend_err)?)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(conflict_or("contact"))?;
                commit(tx, self.caches()).await?;
                Ok(Some(c))
            }

            async fn delete_contact(&self, org: grantry_core::model::OrgId, list: i64, id: i64) -> Result<bool, grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                let n = sqlx::query("DELETE FROM contacts WHERE org_id = $1 AND list_id = $2 AND id = $3")
                    .bind(org)
                    .bind(list)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?
                    .rows_affected();
                commit(tx, self.caches()).await?;
                Ok(n == 1)
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::EventStore for $store {
            async fn record_event(&self, event: &grantry_core::model::Event) -> Result<(), grantry_core::StoreError> {
                self.insert_event(event.clone()).await
            }

            async fn events(&self, org: grantry_core::model::OrgId) -> Result<Vec<grantry_core::model::Event>, grantry_core::StoreError> {
                let rows = sqlx::query(
                    "SELECT transaction_id, org_id, user_id, event_id, event_key, params, received_at \
                     FROM events WHERE org_id = $1 ORDER BY received_at, id",
                )
                .bind(org)
                .fetch_all(self.reader())
                .await
                .map_err(crate::common::backend_err)?;
                rows.iter().map(rows::event).collect()
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::AuditStore for $store {
            async fn record_audit(&self, audit: grantry_core::store::audit::NewAudit) -> Result<(), grantry_core::StoreError> {
                self.insert_audit_event(audit).await
            }

            async fn audit_events(
                &self,
                org: grantry_core::model::OrgId,
                since: Option<grantry_core::Timestamp>,
            ) -> Result<Vec<grantry_core::store::audit::AuditEvent>, grantry_core::StoreError> {
                let rows = sqlx::query(
                    "SELECT id, org_id, at, actor, action, target, detail FROM audit_events \
                     WHERE org_id = $1 AND at >= $2 ORDER BY at, id",
                )
                .bind(org)
                .bind(since.map(|t| t.0).unwrap_or(i64::MIN))
                .fetch_all(self.reader())
                .await
                .map_err(crate::common::backend_err)?;
                rows.iter().map(rows::audit).collect()
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::store::SigningKeyStore for $store {
            async fn signing_keys(&self) -> Result<Vec<grantry_core::store::SigningKey>, grantry_core::StoreError> {
                use crate::common::backend_err;
                use sqlx::Row;
                let rows = sqlx::query("SELECT kid, private_der, n, e, created_at, active_from FROM signing_keys ORDER BY active_from, kid")
                    .fetch_all(self.reader())
                    .await
                    .map_err(backend_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(grantry_core::store::SigningKey {
                            kid: r.try_get("kid").map_err(backend_err)?,
                            private_der: r.try_get("private_der").map_err(backend_err)?,
                            n: r.try_get("n").map_err(backend_err)?,
                            e: r.try_get("e").map_err(backend_err)?,
                            created_at: grantry_core::Timestamp(r.try_get("created_at").map_err(backend_err)?),
                            active_from: grantry_core::Timestamp(r.try_get("active_from").map_err(backend_err)?),
                        })
                    })
                    .collect()
            }

            async fn add_signing_key(&self, key: &grantry_core::store::SigningKey) -> Result<(), grantry_core::StoreError> {
                use crate::common::*;
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO signing_keys (kid, private_der, n, e, created_at, active_from) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(&key.kid)
                    .bind(&key.private_der)
                    .bind(&key.n)
                    .bind(&key.e)
                    .bind(key.created_at.0)
                    .bind(key.active_from.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(conflict_or("signing key"))?;
                commit(tx, self.caches()).await
            }
        }

        #[async_trait::async_trait]
        impl grantry_core::Store for $store {
            async fn ping(&self) -> Result<(), grantry_core::StoreError> {
                sqlx::query("SELECT 1")
                    .execute(self.reader())
                    .await
                    .map_err(crate::common::backend_err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_store;
