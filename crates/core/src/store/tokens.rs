//! Refresh tokens and access tokens: the re-issue window, rotation, first use and
//! revocation (docs/architecture.md, token rules).

use async_trait::async_trait;

use super::{NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{AccessTokenRecord, AccountAccess, AppId, Application, User, UserId};
use crate::permissions::GrantSet;

/// An access token about to be issued.
#[derive(Clone, Debug)]
pub struct NewAccessToken {
    pub digest: Digest,
    pub nonce: Vec<u8>,
    pub scopes: GrantSet,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The signing key, for a JWT access token.
    pub kid: Option<String>,
}

impl NewAccessToken {
    /// The record of this token once stored under `id`.
    pub fn stored_as(self, id: i64) -> AccessTokenRecord {
        AccessTokenRecord {
            id,
            nonce: self.nonce,
            scopes: self.scopes,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            kid: self.kid,
        }
    }
}

/// What the re-issue rule decides, given the newest live access token of an account access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reissue {
    Issue,
    Reuse,
    Reject { retry_at: Timestamp },
}

/// The re-issue rule, as given to [`TokenStore::refresh_access_token`].
pub type DecideReissue<'f> = dyn for<'a> Fn(Option<&'a AccessTokenRecord>) -> Reissue + Sync + 'f;

/// What [`TokenStore::refresh_access_token`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Issued(AccessTokenRecord),
    Reused(AccessTokenRecord),
    Rejected {
        retry_at: Timestamp,
    },
    /// The account access was deleted meanwhile.
    Revoked,
}

/// Everything needed to decide about a presented access token, in one lookup.
#[derive(Clone, Debug)]
pub struct BearerRecord {
    pub token_id: i64,
    pub scopes: GrantSet,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The token, or the account access it came from, was revoked.
    pub revoked: bool,
    pub first_used: bool,
    pub user: User,
    pub app: Option<Application>,
    /// Tokens from an API secret key (deprecated path): when that key stops working, if it
    /// was deleted.
    pub key_stops_at: Option<Timestamp>,
}

/// Why a stored access token no longer opens anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    /// The token, its refresh token or its account access was revoked.
    Revoked,
    Expired,
    /// It came from an API secret key that was deleted and whose grace is over.
    KeyDeleted,
    UserDisabled,
}

impl TokenRefusal {
    /// The audit log's words for it.
    pub fn reason(self) -> &'static str {
        match self {
            TokenRefusal::Revoked => "revoked access token",
            TokenRefusal::Expired => "expired access token",
            TokenRefusal::KeyDeleted => "access token of a deleted secret key",
            TokenRefusal::UserDisabled => "disabled user",
        }
    }
}

impl BearerRecord {
    /// Whether the token is refused at `now`, and why; the one rule the APIs and
    /// introspection share.
    pub fn refusal(&self, now: Timestamp) -> Option<TokenRefusal> {
        if self.revoked {
            Some(TokenRefusal::Revoked)
        } else if now >= self.expires_at {
            Some(TokenRefusal::Expired)
        } else if self.key_stops_at.is_some_and(|t| now >= t) {
            Some(TokenRefusal::KeyDeleted)
        } else if self.user.disabled {
            Some(TokenRefusal::UserDisabled)
        } else {
            None
        }
    }

    /// The grants in force now: the token's scope ∩ the user's grants ∩ the application's
    /// scopes (when it has one).
    pub fn grants(&self) -> GrantSet {
        let grants = self.scopes.intersect(self.user.effective_grants());
        match &self.app {
            Some(app) => grants.intersect(app.scopes),
            None => grants,
        }
    }
}

/// A live refresh token and the account access it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: i64,
    pub access: AccountAccess,
    /// What this token grants at most (the consented scope; every grant for an admin's token).
    pub scopes: GrantSet,
    pub created_at: Timestamp,
    /// Set once the token was exchanged under rotation.
    pub rotated_at: Option<Timestamp>,
    /// The first token of its rotation family (its own id when not rotated from another).
    pub family_id: i64,
    /// For introspection: the application's client id and the user's name.
    pub client_id: String,
    pub username: String,
}

/// A refresh token's successor under rotation and the first access token derived from it,
/// stored together by [`TokenStore::rotate_refresh_token`].
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The refresh token being exchanged.
    pub old: i64,
    /// The successor's digest, and the nonce it was derived from the old token with.
    pub digest: Digest,
    pub nonce: Vec<u8>,
    pub at: Timestamp,
    /// The successor's first access token, and the audit record of its issuance.
    pub access_token: NewAccessToken,
    pub audit: NewAudit,
}

/// Who a token was issued to, for revocation (RFC 7009 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenOwner {
    /// An application: its access tokens and the refresh tokens of its account accesses.
    Application(AppId),
    /// An API user: the access tokens it obtained with its secret keys.
    ApiUser(UserId),
}

/// What [`TokenStore::revoke_token`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// The token is live but was issued to someone else: it was left alone.
    NotOwner,
    /// No live token has this digest.
    Unknown,
}

/// Refresh and access tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The live refresh token with this digest and its account access; `None` once the token
    /// or its account access is revoked.
    async fn refresh_token(&self, digest: &Digest) -> Result<Option<RefreshTokenRecord>>;
    /// The re-issue window of docs/architecture.md, token rules, atomically: shows `decide` the newest unrevoked
    /// access token derived from the refresh token (first from a plain read; when that says
    /// [`Reissue::Issue`], again under the refresh token's lock) and inserts `fresh` only on
    /// [`Reissue::Issue`] under the lock. Concurrent calls for one refresh token are
    /// serialized, so two can never both issue inside the window. `audit` is written only
    /// when a token is issued. [`RefreshOutcome::Revoked`] if the token or its account
    /// access was revoked meanwhile.
    async fn refresh_access_token(
        &self,
        refresh: i64,
        decide: &DecideReissue<'_>,
        fresh: NewAccessToken,
        audit: NewAudit,
    ) -> Result<RefreshOutcome>;
    /// The access token with this digest, with its user and application, revoked or not.
    async fn access_token(&self, digest: &Digest) -> Result<Option<BearerRecord>>;
    /// Records the first use of an access token (once; later calls change nothing).
    async fn mark_access_token_used(
        &self,
        digest: &Digest,
        token: i64,
        audit: NewAudit,
    ) -> Result<()>;
    /// RFC 7009 §2.1: revokes the live access token or refresh token with this digest if it
    /// was issued to `owner`, and records `audit`; revoking a refresh token revokes its whole
    /// grant: the refresh tokens of its rotation family and every access token derived from
    /// them. [`Revocation::NotOwner`] (nothing changed, nothing recorded) if the live token was
    /// issued to anyone else; [`Revocation::Unknown`] if there is no such live token.
    async fn revoke_token(
        &self,
        owner: TokenOwner,
        digest: &Digest,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<Revocation>;
    /// Rotation (docs/architecture.md, token rules): marks `rotation.old` rotated, adds its
    /// successor and the successor's first access token with its audit record, in one
    /// transaction, so an outage can never leave a successor the client did not hear of
    /// without the token that answers a retry. Returns the successor's id and the stored
    /// token; `None` if `old` was rotated or revoked meanwhile.
    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<Option<(i64, AccessTokenRecord)>>;
    /// The live successor of a rotated refresh token: its id and derivation nonce.
    async fn refresh_successor(&self, parent: i64) -> Result<Option<(i64, Vec<u8>)>>;
    /// Revokes every refresh token of a rotation family and their access tokens.
    async fn revoke_refresh_family(
        &self,
        family: i64,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<()>;
}
