//! The domain records (docs/architecture.md, domain) as the store returns them.

use crate::clock::Timestamp;
use crate::permissions::GrantSet;

pub type OrgId = i64;
pub type UserId = i64;
pub type AppId = i64;
pub type AccessId = i64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: Timestamp,
}

/// UI users work in the console; API users only call APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKind {
    Ui,
    Api,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::Ui => "ui",
            UserKind::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<UserKind> {
        match s {
            "ui" => Some(UserKind::Ui),
            "api" => Some(UserKind::Api),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    OrgAdmin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::OrgAdmin => "org_admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "org_admin" => Some(Role::OrgAdmin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub username: String,
    pub email: String,
    pub kind: UserKind,
    pub role: Role,
    /// Grants held directly; see [`User::effective_grants`].
    pub grants: GrantSet,
    /// API users only: the Key ID (a UUID) their secret keys are presented with.
    pub key_id: Option<String>,
    pub principal: bool,
    pub disabled: bool,
    /// A one-time password was set by an admin or at bootstrap; the console asks for a new
    /// one before anything else.
    pub must_change_password: bool,
    pub created_at: Timestamp,
}

impl User {
    /// Org admins hold every grant; others hold what they were given, except that only API
    /// users hold the admin API's grants without being org admins.
    pub fn effective_grants(&self) -> GrantSet {
        match (self.role, self.kind) {
            (Role::OrgAdmin, _) => GrantSet::all(),
            (Role::User, UserKind::Api) => self.grants,
            (Role::User, UserKind::Ui) => self.grants.without(GrantSet::all().admin_part()),
        }
    }
}

/// An OAuth client of one org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub id: AppId,
    pub org_id: OrgId,
    pub client_id: String,
    pub name: String,
    pub description: String,
    /// The most the application may ask for.
    pub scopes: GrantSet,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    /// Each refresh returns a new refresh token; reusing an old one revokes the family.
    pub rotate_refresh_tokens: bool,
    /// Opaque (default) or JWT (RFC 9068) access tokens.
    pub token_format: TokenFormat,
    pub created_at: Timestamp,
}

/// How an application's access tokens look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    Opaque,
    Jwt,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Opaque => "opaque",
            TokenFormat::Jwt => "jwt",
        }
    }

    pub fn parse(s: &str) -> Option<TokenFormat> {
        match s {
            "opaque" => Some(TokenFormat::Opaque),
            "jwt" => Some(TokenFormat::Jwt),
            _ => None,
        }
    }
}

/// The (application, UI user) relationship that holds a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountAccess {
    pub id: AccessId,
    pub org_id: OrgId,
    pub app_id: AppId,
    pub user_id: UserId,
    pub created_by: Option<UserId>,
    /// What the access grants at most: every grant for access an admin added (the
    /// application's scopes and the user's grants then bound it), the consented scopes for
    /// access a user gave in the web-server flow.
    pub scopes: GrantSet,
    pub created_at: Timestamp,
}

/// An issued access token's stored facts (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenRecord {
    pub id: i64,
    pub nonce: Vec<u8>,
    pub scopes: GrantSet,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// The signing key of a JWT access token.
    pub kid: Option<String>,
}

/// One database (list) of the platform's data, with its contact count.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct List {
    pub id: i64,
    pub name: String,
    pub size: i64,
    #[serde(skip)]
    pub created_at: Timestamp,
}

/// One contact (recipient) of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    pub list_id: i64,
    pub email: String,
    pub columns: std::collections::BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One of an API user's secret keys. Live keys hold slot 1 or 2; a deleted key has
/// no slot and keeps working until `stops_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: UserId,
    pub slot: Option<u8>,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    pub stops_at: Option<Timestamp>,
    /// When it last opened an API, to the minute ([`ApiKey::USE_PRECISION`]); `None` if never.
    pub last_used_at: Option<Timestamp>,
}

impl ApiKey {
    /// How stale a key's recorded last use may be: a use is written only when the recorded one
    /// is older than this, so a busy key costs one write a minute, not one per request.
    pub const USE_PRECISION: std::time::Duration = std::time::Duration::from_secs(60);

    /// Whether a use at `now` should be recorded.
    pub fn use_is_news(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|t| now.0.saturating_sub(t.0) >= Self::USE_PRECISION.as_millis() as i64)
    }

    /// Live, or deleted but still inside its grace period.
    pub fn works_at(&self, now: Timestamp) -> bool {
        self.stops_at.is_none_or(|s| now < s)
    }
}

/// A stored Event API event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub transaction_id: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub event_id: String,
    pub event_key: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub received_at: Timestamp,
}

/// An authorization code (RFC 6749 §4.1.2), as stored: single use, short-lived, bound to the
/// client, the redirect URI and the PKCE challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCode {
    pub id: i64,
    pub org_id: OrgId,
    pub app_id: AppId,
    pub user_id: UserId,
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    pub scopes: GrantSet,
    /// The S256 `code_challenge` (RFC 7636), if one was sent.
    pub code_challenge: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
