//! The rows of what a user grants an application: account accesses, authorization codes,
//! refresh tokens and access tokens.

use sqlx::FromRow;

use grantry_core::model::{AccessTokenRecord, AccountAccess, Application, AuthCode};
use grantry_core::store::{AccessSummary, BearerRecord, RefreshTokenRecord};
use grantry_core::{GrantSet, StoreError, Timestamp};

use super::UserRow;

#[derive(FromRow)]
pub(crate) struct AccessRow {
    pub id: i64,
    pub org_id: i64,
    pub app_id: i64,
    pub user_id: i64,
    pub created_by: Option<i64>,
    pub scopes: i64,
    pub created_at: i64,
}

impl From<AccessRow> for AccountAccess {
    fn from(r: AccessRow) -> AccountAccess {
        AccountAccess {
            id: r.id,
            org_id: r.org_id,
            app_id: r.app_id,
            user_id: r.user_id,
            created_by: r.created_by,
            scopes: GrantSet::from_bits(r.scopes),
            created_at: Timestamp(r.created_at),
        }
    }
}

/// A live account access with the names an admin reads.
#[derive(FromRow)]
pub(crate) struct SummaryRow {
    #[sqlx(flatten)]
    access: AccessRow,
    #[sqlx(rename = "p_client_id")]
    client_id: String,
    #[sqlx(rename = "p_name")]
    application: String,
    #[sqlx(rename = "u_username")]
    username: String,
    /// The admin who added it; `NULL` when the user consented.
    #[sqlx(rename = "b_username")]
    created_by: Option<String>,
    /// When one of its refresh tokens last issued an access token.
    last_used_at: Option<i64>,
}

impl From<SummaryRow> for AccessSummary {
    fn from(r: SummaryRow) -> AccessSummary {
        AccessSummary {
            access: r.access.into(),
            client_id: r.client_id,
            application: r.application,
            username: r.username,
            created_by: r.created_by,
            last_used_at: r.last_used_at.map(Timestamp),
        }
    }
}

#[derive(FromRow)]
pub(crate) struct CodeRow {
    id: i64,
    org_id: i64,
    app_id: i64,
    user_id: i64,
    redirect_uri: String,
    redirect_uri_given: bool,
    scopes: i64,
    code_challenge: Option<String>,
    created_at: i64,
    expires_at: i64,
    /// The refresh token the code was redeemed for, once granted.
    pub refresh_id: Option<i64>,
}

impl From<CodeRow> for AuthCode {
    fn from(r: CodeRow) -> AuthCode {
        AuthCode {
            id: r.id,
            org_id: r.org_id,
            app_id: r.app_id,
            user_id: r.user_id,
            redirect_uri: r.redirect_uri,
            redirect_uri_given: r.redirect_uri_given,
            scopes: GrantSet::from_bits(r.scopes),
            code_challenge: r.code_challenge,
            created_at: Timestamp(r.created_at),
            expires_at: Timestamp(r.expires_at),
        }
    }
}

/// A refresh token (`r_` columns) with its account access, client id and username.
#[derive(FromRow)]
pub(crate) struct RefreshRow {
    #[sqlx(rename = "r_id")]
    pub id: i64,
    #[sqlx(rename = "r_scopes")]
    pub scopes: i64,
    #[sqlx(rename = "r_created_at")]
    pub created_at: i64,
    #[sqlx(rename = "r_rotated_at")]
    pub rotated_at: Option<i64>,
    #[sqlx(rename = "r_family")]
    pub family_id: i64,
    #[sqlx(flatten)]
    pub access: AccessRow,
    #[sqlx(rename = "p_client_id")]
    pub client_id: String,
    #[sqlx(rename = "u_username")]
    pub username: String,
}

impl From<RefreshRow> for RefreshTokenRecord {
    fn from(r: RefreshRow) -> RefreshTokenRecord {
        RefreshTokenRecord {
            id: r.id,
            access: r.access.into(),
            scopes: GrantSet::from_bits(r.scopes),
            created_at: Timestamp(r.created_at),
            rotated_at: r.rotated_at.map(Timestamp),
            family_id: r.family_id,
            client_id: r.client_id,
            username: r.username,
        }
    }
}

/// An access token's stored facts.
#[derive(FromRow)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub nonce: Vec<u8>,
    pub scopes: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub kid: Option<String>,
}

impl From<TokenRow> for AccessTokenRecord {
    fn from(r: TokenRow) -> AccessTokenRecord {
        AccessTokenRecord {
            id: r.id,
            nonce: r.nonce,
            scopes: GrantSet::from_bits(r.scopes),
            issued_at: Timestamp(r.issued_at),
            expires_at: Timestamp(r.expires_at),
            kid: r.kid,
        }
    }
}

/// A bearer access token (`t_` columns) with its user and the revocations that stop it; its
/// application's columns are read as a [`super::AppRow`] when `app_id` is set.
#[derive(FromRow)]
pub(crate) struct BearerRow {
    #[sqlx(rename = "t_id")]
    token_id: i64,
    #[sqlx(rename = "t_scopes")]
    scopes: i64,
    #[sqlx(rename = "t_issued_at")]
    issued_at: i64,
    #[sqlx(rename = "t_expires_at")]
    expires_at: i64,
    #[sqlx(rename = "t_revoked_at")]
    revoked_at: Option<i64>,
    /// Of its account access.
    #[sqlx(rename = "a_revoked_at")]
    access_revoked_at: Option<i64>,
    /// Of its refresh token.
    #[sqlx(rename = "r_revoked_at")]
    refresh_revoked_at: Option<i64>,
    #[sqlx(rename = "t_first_used_at")]
    first_used_at: Option<i64>,
    #[sqlx(rename = "t_app_id")]
    pub app_id: Option<i64>,
    /// Of the API key it was minted from.
    #[sqlx(rename = "k_stops_at")]
    key_stops_at: Option<i64>,
    #[sqlx(flatten)]
    user: UserRow,
}

impl BearerRow {
    /// The record, with the token's application (read when `app_id` is set).
    pub fn into_record(self, app: Option<Application>) -> Result<BearerRecord, StoreError> {
        Ok(BearerRecord {
            token_id: self.token_id,
            scopes: GrantSet::from_bits(self.scopes),
            issued_at: Timestamp(self.issued_at),
            expires_at: Timestamp(self.expires_at),
            revoked: self.revoked_at.is_some()
                || self.access_revoked_at.is_some()
                || self.refresh_revoked_at.is_some(),
            first_used: self.first_used_at.is_some(),
            user: self.user.try_into()?,
            app,
            key_stops_at: self.key_stops_at.map(Timestamp),
        })
    }
}

/// Who an account access belongs to, as the locked half of a refresh reads it.
#[derive(FromRow)]
pub(crate) struct OwnerRow {
    pub org_id: i64,
    pub app_id: i64,
    pub user_id: i64,
}

/// A refresh token just marked rotated: what its successor inherits.
#[derive(FromRow)]
pub(crate) struct RotatedRow {
    pub access_id: i64,
    pub scopes: i64,
    pub family: i64,
}
