//! The rows of orgs, users, applications and their credentials (API keys, client secrets).

use sqlx::FromRow;

use grantry_core::credential::Digest;
use grantry_core::model::{ApiKey, Application, Org, Role, TokenFormat, User, UserKind};
use grantry_core::store::AppSummary;
use grantry_core::{GrantSet, StoreError, Timestamp};

use crate::cache::SecretEntry;
use crate::sql::backend_err;

#[derive(FromRow)]
pub(crate) struct OrgRow {
    id: i64,
    name: String,
    created_at: i64,
}

impl From<OrgRow> for Org {
    fn from(r: OrgRow) -> Org {
        Org {
            id: r.id,
            name: r.name,
            created_at: Timestamp(r.created_at),
        }
    }
}

#[derive(FromRow)]
pub(crate) struct UserRow {
    #[sqlx(rename = "u_id")]
    id: i64,
    #[sqlx(rename = "u_org_id")]
    org_id: i64,
    #[sqlx(rename = "u_username")]
    username: String,
    #[sqlx(rename = "u_email")]
    email: String,
    #[sqlx(rename = "u_kind")]
    kind: String,
    #[sqlx(rename = "u_role")]
    role: String,
    #[sqlx(rename = "u_grants")]
    grants: i64,
    #[sqlx(rename = "u_key_id")]
    key_id: Option<String>,
    #[sqlx(rename = "u_principal")]
    principal: bool,
    #[sqlx(rename = "u_disabled_at")]
    disabled_at: Option<i64>,
    #[sqlx(rename = "u_must_change_password")]
    must_change_password: bool,
    #[sqlx(rename = "u_created_at")]
    created_at: i64,
}

impl UserRow {
    /// The same columns from a rusqlite row (the SQLite hot paths).
    pub(crate) fn from_rusqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            id: r.get("u_id")?,
            org_id: r.get("u_org_id")?,
            username: r.get("u_username")?,
            email: r.get("u_email")?,
            kind: r.get("u_kind")?,
            role: r.get("u_role")?,
            grants: r.get("u_grants")?,
            key_id: r.get("u_key_id")?,
            principal: r.get("u_principal")?,
            disabled_at: r.get("u_disabled_at")?,
            must_change_password: r.get("u_must_change_password")?,
            created_at: r.get("u_created_at")?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<User, StoreError> {
        Ok(User {
            id: r.id,
            org_id: r.org_id,
            username: r.username,
            email: r.email,
            kind: UserKind::parse(&r.kind)
                .ok_or_else(|| backend_err(format!("bad user kind {}", r.kind)))?,
            role: Role::parse(&r.role)
                .ok_or_else(|| backend_err(format!("bad role {}", r.role)))?,
            grants: GrantSet::from_bits(r.grants),
            key_id: r.key_id,
            principal: r.principal,
            disabled: r.disabled_at.is_some(),
            must_change_password: r.must_change_password,
            created_at: Timestamp(r.created_at),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct AppRow {
    #[sqlx(rename = "p_id")]
    id: i64,
    #[sqlx(rename = "p_org_id")]
    org_id: i64,
    #[sqlx(rename = "p_client_id")]
    client_id: String,
    #[sqlx(rename = "p_name")]
    name: String,
    #[sqlx(rename = "p_description")]
    description: String,
    #[sqlx(rename = "p_scopes")]
    scopes: i64,
    /// A JSON array of strings.
    #[sqlx(rename = "p_redirect_uris")]
    redirect_uris: String,
    #[sqlx(rename = "p_public")]
    public: bool,
    #[sqlx(rename = "p_rotate")]
    rotate_refresh_tokens: bool,
    #[sqlx(rename = "p_token_format")]
    token_format: String,
    #[sqlx(rename = "p_created_at")]
    created_at: i64,
}

impl TryFrom<AppRow> for Application {
    type Error = StoreError;

    fn try_from(r: AppRow) -> Result<Application, StoreError> {
        Ok(Application {
            id: r.id,
            org_id: r.org_id,
            client_id: r.client_id,
            name: r.name,
            description: r.description,
            scopes: GrantSet::from_bits(r.scopes),
            redirect_uris: serde_json::from_str(&r.redirect_uris).map_err(backend_err)?,
            public: r.public,
            rotate_refresh_tokens: r.rotate_refresh_tokens,
            token_format: TokenFormat::parse(&r.token_format)
                .ok_or_else(|| backend_err(format!("bad token format {}", r.token_format)))?,
            created_at: Timestamp(r.created_at),
        })
    }
}

/// An application with the latest use of its refresh tokens.
#[derive(FromRow)]
pub(crate) struct AppSummaryRow {
    #[sqlx(flatten)]
    app: AppRow,
    last_used_at: Option<i64>,
}

impl TryFrom<AppSummaryRow> for AppSummary {
    type Error = StoreError;

    fn try_from(r: AppSummaryRow) -> Result<AppSummary, StoreError> {
        Ok(AppSummary {
            app: r.app.try_into()?,
            last_used_at: r.last_used_at.map(Timestamp),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct KeyRow {
    #[sqlx(rename = "k_id")]
    id: i64,
    #[sqlx(rename = "k_user_id")]
    user_id: i64,
    #[sqlx(rename = "k_slot")]
    slot: Option<i64>,
    #[sqlx(rename = "k_created_at")]
    created_at: i64,
    #[sqlx(rename = "k_deleted_at")]
    deleted_at: Option<i64>,
    #[sqlx(rename = "k_stops_at")]
    stops_at: Option<i64>,
    #[sqlx(rename = "k_last_used_at")]
    last_used_at: Option<i64>,
}

impl KeyRow {
    /// The same columns from a rusqlite row (the SQLite hot paths).
    pub(crate) fn from_rusqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
        Ok(KeyRow {
            id: r.get("k_id")?,
            user_id: r.get("k_user_id")?,
            slot: r.get("k_slot")?,
            created_at: r.get("k_created_at")?,
            deleted_at: r.get("k_deleted_at")?,
            stops_at: r.get("k_stops_at")?,
            last_used_at: r.get("k_last_used_at")?,
        })
    }
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> ApiKey {
        ApiKey {
            id: r.id,
            user_id: r.user_id,
            slot: r.slot.map(|s| s as u8),
            created_at: Timestamp(r.created_at),
            deleted_at: r.deleted_at.map(Timestamp),
            stops_at: r.stops_at.map(Timestamp),
            last_used_at: r.last_used_at.map(Timestamp),
        }
    }
}

/// An API key with its user.
#[derive(FromRow)]
pub(crate) struct KeyUserRow {
    #[sqlx(flatten)]
    key: KeyRow,
    #[sqlx(flatten)]
    user: UserRow,
}

impl TryFrom<KeyUserRow> for (ApiKey, User) {
    type Error = StoreError;

    fn try_from(r: KeyUserRow) -> Result<(ApiKey, User), StoreError> {
        Ok((r.key.into(), r.user.try_into()?))
    }
}

#[derive(FromRow)]
pub(crate) struct SecretRow {
    digest: Vec<u8>,
    expires_at: Option<i64>,
}

impl TryFrom<SecretRow> for SecretEntry {
    type Error = StoreError;

    fn try_from(r: SecretRow) -> Result<SecretEntry, StoreError> {
        let d = Digest::from_slice(&r.digest)
            .ok_or_else(|| backend_err("client secret digest is not 32 bytes"))?;
        Ok((d, r.expires_at))
    }
}
