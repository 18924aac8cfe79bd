//! Account access (the application–user relationship that holds refresh tokens), the
//! web-server flow's consent, and authorization codes.

use async_trait::async_trait;

use super::{NewAccessToken, NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{AccessId, AccountAccess, AppId, AuthCode, OrgId, UserId};
use crate::permissions::GrantSet;

/// A live account access with the names an admin reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessSummary {
    pub access: AccountAccess,
    pub client_id: String,
    pub application: String,
    pub username: String,
    /// `None` when the user gave it by consent (web-server flow).
    pub created_by: Option<String>,
    /// When one of its refresh tokens last issued an access token; `None` if never.
    pub last_used_at: Option<Timestamp>,
}

/// A user's consent to an application, as [`AccountAccessStore::grant_account_access`]
/// records it.
#[derive(Clone, Debug)]
pub struct Consent {
    pub org: OrgId,
    pub app: AppId,
    pub user: UserId,
    pub scopes: GrantSet,
    /// The digest of the new refresh token.
    pub refresh_token: Digest,
    /// The authorization code being redeemed, if any.
    pub code: Option<i64>,
    /// The first access token, derived from the new refresh token and stored in the same
    /// transaction, so that a concurrent reuse of the code finds either nothing or both.
    pub access_token: NewAccessToken,
}

/// An authorization code to store.
#[derive(Clone, Debug)]
pub struct NewAuthCode {
    pub digest: Digest,
    pub org_id: OrgId,
    pub app_id: AppId,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scopes: GrantSet,
    pub code_challenge: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What redeeming an authorization code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// First use: the code is now spent.
    Fresh(AuthCode),
    /// Already used: whatever it issued has been revoked (RFC 6749 §4.1.2, RFC 9700 §4.5).
    Reused(AuthCode),
    /// Issued to another application: left unspent, and nothing was revoked.
    WrongClient,
    Unknown,
}

/// Account access, consent and authorization codes.
#[async_trait]
pub trait AccountAccessStore: Send + Sync {
    /// Binds an application to a UI user with a refresh token. `Conflict("account access")`
    /// if that pair already has live access.
    async fn create_account_access(
        &self,
        org: OrgId,
        app: AppId,
        user: UserId,
        created_by: Option<UserId>,
        refresh_token: Digest,
        audit: NewAudit,
    ) -> Result<AccountAccess>;
    /// The live account access of an (application, user) pair.
    async fn account_access(&self, app: AppId, user: UserId) -> Result<Option<AccountAccess>>;
    /// Every live account access of `org`, oldest first.
    async fn account_accesses(&self, org: OrgId) -> Result<Vec<AccessSummary>>;
    /// The web-server flow's consent: creates the user's account access for the application
    /// (with `scopes`) or extends a live one (its scopes become the union), and adds a new
    /// refresh token carrying `scopes`. When `code` is given, the code records the refresh
    /// token so that a later reuse of the code revokes it; `access_token` is stored with it.
    /// A code reused while it was being redeemed (between [`Self::redeem_auth_code`] and this
    /// call) is `NotFound("unspent authorization code")` and nothing is stored, so a code
    /// used twice never leaves live tokens (RFC 6749 §4.1.2). Returns the access and the
    /// refresh token's id.
    async fn grant_account_access(
        &self,
        consent: Consent,
        audit: NewAudit,
    ) -> Result<(AccountAccess, i64)>;
    /// Revokes the account access, its refresh token and every access token derived from it,
    /// in one transaction. After it returns `true`, [`super::TokenStore::access_token`]
    /// reports those tokens revoked and [`super::TokenStore::refresh_token`] returns `None`.
    /// `false` if there was no live access.
    async fn revoke_account_access(
        &self,
        access: AccessId,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool>;
    async fn create_auth_code(&self, code: NewAuthCode) -> Result<()>;
    /// Spends the code of application `app` in one conditional statement. A code that was
    /// already spent is reported `Reused` and marked so, and the refresh tokens it issued —
    /// the first and its rotated successors — are revoked with their access tokens, in the
    /// same transaction. A reuse that arrives before the first redemption's grant committed
    /// finds nothing to revoke, and that grant then stores nothing (see
    /// [`Self::grant_account_access`]): a code used twice leaves no success with live tokens.
    /// A code of another application is `WrongClient` and changes nothing, so a
    /// leaked code cannot be used to revoke its rightful client's tokens.
    async fn redeem_auth_code(
        &self,
        digest: &Digest,
        app: AppId,
        now: Timestamp,
    ) -> Result<Redemption>;
}
