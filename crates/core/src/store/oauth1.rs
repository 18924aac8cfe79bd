//! OAuth 1.0a (RFC 5849): temporary credentials, token credentials and the nonces seen
//! (docs/architecture.md, OAuth 1.0a).

use async_trait::async_trait;

use super::{NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{AccessId, AppId, Application, User, UserId};
use crate::permissions::GrantSet;

/// A client secret the server can compute again: its digest and the nonce it was derived
/// from (docs/architecture.md, OAuth 1.0a).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivableSecret {
    pub digest: Digest,
    pub nonce: [u8; 16],
}

/// Temporary credentials to store (RFC 5849 §2.1).
#[derive(Clone, Debug)]
pub struct NewRequestToken {
    pub digest: Digest,
    pub app_id: AppId,
    /// A registered redirect URI of the application, or `oob`.
    pub callback: String,
    pub scopes: GrantSet,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Stored temporary credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTokenRecord {
    pub id: i64,
    pub app: Application,
    pub callback: String,
    pub scopes: GrantSet,
    pub expires_at: Timestamp,
    /// The UI user who authorized it, and the digest of the verifier they were given.
    pub authorized: Option<(UserId, Digest)>,
    pub used: bool,
}

impl RequestTokenRecord {
    /// Whether it can still be authorized or exchanged at `now`.
    pub fn live(&self, now: Timestamp) -> bool {
        !self.used && now < self.expires_at
    }
}

/// What exchanging temporary credentials for token credentials found (RFC 5849 §2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// Spent now: the account access it created or extended, and the new token's id.
    Issued { access: AccessId, token: i64 },
    /// Unknown, of another application, expired, not authorized or already spent.
    Refused,
}

/// Stored token credentials with what they act as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth1TokenRecord {
    pub id: i64,
    pub scopes: GrantSet,
    /// The token, or the account access it belongs to, was revoked.
    pub revoked: bool,
    pub user: User,
    pub app: Application,
}

impl OAuth1TokenRecord {
    /// The grants in force now: the token's scopes ∩ the user's grants ∩ the application's
    /// scopes, the rule of every access token.
    pub fn grants(&self) -> GrantSet {
        self.scopes
            .intersect(self.user.effective_grants())
            .intersect(self.app.scopes)
    }
}

/// OAuth 1.0a's credentials and nonces.
#[async_trait]
pub trait OAuth1Store: Send + Sync {
    /// The client secrets of `app` valid at `now` that were derived (newest first).
    async fn derivable_secrets(&self, app: AppId, now: Timestamp) -> Result<Vec<DerivableSecret>>;
    async fn create_request_token(&self, token: NewRequestToken) -> Result<()>;
    /// Temporary credentials by digest, whatever their state.
    async fn request_token(&self, digest: &Digest) -> Result<Option<RequestTokenRecord>>;
    /// Records that `user` authorized live, not yet authorized temporary credentials, with
    /// the digest of the verifier; `false` (nothing recorded) otherwise.
    async fn authorize_request_token(
        &self,
        digest: &Digest,
        user: UserId,
        verifier: Digest,
        now: Timestamp,
        audit: NewAudit,
    ) -> Result<bool>;
    /// Spends authorized temporary credentials of application `app` in one conditional
    /// statement (single use: of concurrent exchanges exactly one is `Issued`), creates the
    /// user's account access for the application or extends the live one (its scopes become
    /// the union, as a consent does) and stores token credentials `token` under it, with
    /// `audit` naming the new token, in one transaction.
    async fn exchange_request_token(
        &self,
        digest: &Digest,
        app: AppId,
        now: Timestamp,
        token: Digest,
        audit: NewAudit,
    ) -> Result<Exchange>;
    /// Token credentials by digest, with their user and application.
    async fn oauth1_token(&self, digest: &Digest) -> Result<Option<OAuth1TokenRecord>>;
    /// Remembers a nonce of `app` with timestamp `stamp` until `expires_at`: `true` for its
    /// first use, `false` if it was seen before (RFC 5849 §3.3). Atomic: of concurrent uses
    /// of one nonce exactly one is `true`, on every instance sharing the database.
    async fn use_nonce(
        &self,
        app: AppId,
        stamp: i64,
        nonce: &str,
        expires_at: Timestamp,
    ) -> Result<bool>;
}
