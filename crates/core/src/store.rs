//! The storage contract, in domain words. `grantry-store` implements it for SQLite and
//! PostgreSQL; its conformance suite holds both to the contracts written here.
//!
//! Every mutation that an admin or a credential event causes takes the [`NewAudit`] that
//! records it and writes both in one transaction: nothing is acknowledged without its record.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::audit::{AuditEvent, NewAudit};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::error::StoreError;
use crate::grant::GrantSet;
use crate::model::*;

pub type Result<T> = std::result::Result<T, StoreError>;

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub kind: UserKind,
    pub role: Role,
    pub grants: GrantSet,
    /// argon2id PHC string; UI users only.
    pub password_hash: Option<String>,
    /// API users only.
    pub key_id: Option<String>,
    pub created_at: Timestamp,
}

/// An application to register.
#[derive(Clone, Debug)]
pub struct NewApplication {
    pub org_id: OrgId,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub scopes: GrantSet,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    pub rotate_refresh_tokens: bool,
    pub token_format: crate::jwt::TokenFormat,
    pub created_at: Timestamp,
}

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

/// The re-issue rule, as given to [`Store::refresh_access_token`].
pub type DecideReissue<'f> = dyn for<'a> Fn(Option<&'a AccessTokenRecord>) -> Reissue + Sync + 'f;

/// What [`Store::refresh_access_token`] did.
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

/// What [`Store::delete_api_key`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedKey {
    pub key: ApiKey,
    /// Set when slot 1 was deleted and the key in slot 2 moved into slot 1.
    pub promoted: bool,
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

/// A live account access with the names an admin reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessSummary {
    pub access: AccountAccess,
    pub client_id: String,
    pub application: String,
    pub username: String,
    /// `None` when the user gave it by consent (web-server flow).
    pub created_by: Option<String>,
}

/// A user's consent to an application, as [`Store::grant_account_access`] records it.
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

/// What redeeming an authorization code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// First use: the code is now spent.
    Fresh(AuthCode),
    /// Already used: whatever it issued has been revoked (RFC 6749 §4.1.2, RFC 9700 §4.5).
    Reused(AuthCode),
    Unknown,
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

/// How a contact is found.
#[derive(Clone, Copy, Debug)]
pub enum ContactKey<'a> {
    Id(i64),
    Email(&'a str),
}

/// Persistent state of grantry.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- organizations and users -----

    /// Creates an org and its principal org admin in one transaction.
    /// `Conflict("organization")` if the name is taken.
    async fn create_org(&self, name: &str, admin: NewUser, audit: NewAudit) -> Result<(Org, User)>;
    async fn org_by_name(&self, name: &str) -> Result<Option<Org>>;
    async fn count_orgs(&self) -> Result<i64>;
    /// `Conflict("user")` if the username is taken in the org.
    async fn create_user(&self, org: OrgId, user: NewUser, audit: NewAudit) -> Result<User>;
    async fn user_by_username(&self, org: OrgId, username: &str) -> Result<Option<User>>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;
    /// The argon2id PHC string of a UI user's password.
    async fn password_hash(&self, user: UserId) -> Result<Option<String>>;
    /// Starts a signed-in browser session for a UI user.
    async fn create_session(
        &self,
        digest: Digest,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// The user of a live session (not expired, user not disabled).
    async fn session_user(&self, digest: &Digest, now: Timestamp) -> Result<Option<User>>;
    /// The principal org admin of `org`.
    async fn principal_admin(&self, org: OrgId) -> Result<Option<User>>;
    async fn set_user_grants(&self, user: UserId, grants: GrantSet, audit: NewAudit) -> Result<()>;

    // ----- applications -----

    /// Registers an application with its first client secret (absent for public clients).
    /// `Conflict("application")` if the org already has an application of that name.
    async fn create_application(
        &self,
        app: NewApplication,
        secret: Option<Digest>,
        audit: NewAudit,
    ) -> Result<Application>;
    async fn application_by_client_id(&self, client_id: &str) -> Result<Option<Application>>;
    /// Adds a new client secret and makes every older one expire at `old_expires_at` (or
    /// earlier, if it already expired sooner).
    async fn rotate_client_secret(
        &self,
        app: AppId,
        secret: Digest,
        now: Timestamp,
        old_expires_at: Timestamp,
        audit: NewAudit,
    ) -> Result<()>;
    /// The digests of the client secrets valid at `now`.
    async fn client_secrets(&self, app: AppId, now: Timestamp) -> Result<Vec<Digest>>;

    // ----- account access -----

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
    /// The live refresh token with this digest and its account access; `None` once the token
    /// or its account access is revoked.
    async fn refresh_token(&self, digest: &Digest) -> Result<Option<RefreshTokenRecord>>;
    /// The web-server flow's consent: creates the user's account access for the application
    /// (with `scopes`) or extends a live one (its scopes become the union), and adds a new
    /// refresh token carrying `scopes`. When `code` is given, the code records the refresh
    /// token so that a later reuse of the code revokes it; `access_token` is stored with it.
    /// Returns the access and the refresh token's id.
    async fn grant_account_access(
        &self,
        consent: Consent,
        audit: NewAudit,
    ) -> Result<(AccountAccess, i64)>;
    /// RFC 7009: revokes the access token or refresh token with this digest if it belongs to
    /// `org`; revoking a refresh token revokes its whole grant: the refresh tokens of its
    /// rotation family and every access token derived from them.
    /// `false` if there was no such live token in `org`.
    async fn revoke_token(
        &self,
        org: OrgId,
        digest: &Digest,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool>;

    /// Rotation (DESIGN.md §2): marks `old` rotated and adds its successor, derived from it
    /// with `nonce`, in one transaction. `None` if `old` was rotated or revoked meanwhile.
    async fn rotate_refresh_token(
        &self,
        old: i64,
        digest: Digest,
        nonce: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<i64>>;
    /// The live successor of a rotated refresh token: its id and derivation nonce.
    async fn refresh_successor(&self, parent: i64) -> Result<Option<(i64, Vec<u8>)>>;
    /// Revokes every refresh token of a rotation family and their access tokens.
    async fn revoke_refresh_family(
        &self,
        family: i64,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<()>;

    /// Every JWT signing key, oldest first.
    async fn signing_keys(&self) -> Result<Vec<crate::jwt::SigningKey>>;
    async fn add_signing_key(&self, key: &crate::jwt::SigningKey) -> Result<()>;

    // ----- authorization codes -----

    async fn create_auth_code(&self, code: NewAuthCode) -> Result<()>;
    /// Spends the code in one conditional statement. A code that was already spent is
    /// reported `Reused` and marked so, and the refresh tokens it issued — the first and its
    /// rotated successors — are revoked with their access tokens, in the same transaction. A
    /// reuse that arrives before the first redemption's grant committed finds nothing to
    /// revoke, so concurrent duplicates of one request leave exactly one success.
    async fn redeem_auth_code(&self, digest: &Digest, now: Timestamp) -> Result<Redemption>;
    /// Revokes the account access, its refresh token and every access token derived from it,
    /// in one transaction. After it returns `true`, [`Store::access_token`] reports those
    /// tokens revoked and [`Store::account_access_by_refresh_token`] returns `None`.
    /// `false` if there was no live access.
    async fn revoke_account_access(
        &self,
        access: AccessId,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<bool>;
    /// The re-issue window of DESIGN.md §2, atomically: shows `decide` the newest unrevoked
    /// access token derived from the refresh token (first from a plain read; when that says
    /// [`Reissue::Issue`], again under the refresh token's lock) and inserts `fresh` only on
    /// [`Reissue::Issue`] under the lock. Concurrent calls for one refresh token are serialized, so two can
    /// never both issue inside the window. `audit` is written only when a token is issued.
    /// [`RefreshOutcome::Revoked`] if the token or its account access was revoked meanwhile.
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

    /// Disables (`true`) or re-enables a user; a disabled user's credentials stop at once.
    async fn set_user_disabled(
        &self,
        user: UserId,
        disabled: bool,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<()>;
    /// Deletes a user with its keys, account accesses and tokens. `NotFound("user")` if gone.
    async fn delete_user(&self, user: UserId, audit: NewAudit) -> Result<()>;

    // ----- API secret keys (seed 002) -----

    /// Adds a secret key in the free slot (1, else 2), serialized per user.
    /// `Conflict("secret key")` when both slots are taken.
    async fn generate_api_key(
        &self,
        user: UserId,
        digest: Digest,
        now: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey>;
    /// Deletes the live key in `slot`: it loses its slot and keeps working until `stops_at`.
    /// Deleting slot 1 promotes the key in slot 2 to slot 1. Serialized per user with
    /// [`Store::generate_api_key`]. `None` if the slot is empty.
    async fn delete_api_key(
        &self,
        user: UserId,
        slot: u8,
        now: Timestamp,
        stops_at: Timestamp,
        audit: NewAudit,
    ) -> Result<Option<DeletedKey>>;
    /// The user's keys that are live or still in their grace period, slot order first.
    async fn api_keys(&self, user: UserId, now: Timestamp) -> Result<Vec<ApiKey>>;
    /// The key with this digest and its user, whether or not it still works.
    async fn api_key_by_digest(&self, digest: &Digest) -> Result<Option<(ApiKey, User)>>;
    /// Stores an access token minted from an API secret key (the deprecated
    /// `client_credentials` path).
    async fn issue_key_token(
        &self,
        key: &ApiKey,
        user: &User,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> Result<i64>;

    // ----- the Event API -----

    /// Stores an event durably; returns once committed.
    async fn record_event(&self, event: &Event) -> Result<()>;
    /// Events of an org, oldest first (for tests and exports).
    async fn events(&self, org: OrgId) -> Result<Vec<Event>>;

    // ----- audit -----

    async fn record_audit(&self, audit: NewAudit) -> Result<()>;
    /// Events of `org`, oldest first, from `since` on.
    async fn audit_events(&self, org: OrgId, since: Option<Timestamp>) -> Result<Vec<AuditEvent>>;

    // ----- the platform's data: lists (REST "databases") and contacts -----

    /// `Conflict("database")` if the org has a list of that name.
    async fn create_list(&self, org: OrgId, name: &str, now: Timestamp) -> Result<List>;
    async fn lists(&self, org: OrgId) -> Result<Vec<List>>;
    async fn list(&self, org: OrgId, id: i64) -> Result<Option<List>>;
    /// Deletes the list and its contacts; `false` if it does not exist in `org`.
    async fn delete_list(&self, org: OrgId, id: i64) -> Result<bool>;
    /// `NotFound("database")` if the list is not in `org`; `Conflict("contact")` if the
    /// e-mail address (case-insensitive) is already on the list.
    async fn add_contact(
        &self,
        org: OrgId,
        list: i64,
        email: &str,
        columns: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<Contact>;
    async fn contact(&self, org: OrgId, list: i64, key: ContactKey<'_>) -> Result<Option<Contact>>;
    /// A page of contacts ordered by id, and the list's total; `None` if the list is not in `org`.
    async fn contacts(
        &self,
        org: OrgId,
        list: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Option<(Vec<Contact>, i64)>>;
    /// Changes the e-mail (if given) and merges `columns` into the contact's columns.
    /// `None` if no such contact; `Conflict("contact")` if the new e-mail is taken.
    async fn update_contact(
        &self,
        org: OrgId,
        list: i64,
        id: i64,
        email: Option<&str>,
        columns: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<Option<Contact>>;
    async fn delete_contact(&self, org: OrgId, list: i64, id: i64) -> Result<bool>;

    /// Cheap liveness probe of the database.
    async fn ping(&self) -> Result<()>;
}
