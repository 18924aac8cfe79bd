//! Applications (OAuth clients) and their client secrets.

use async_trait::async_trait;

use super::{NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{AppId, Application, OrgId, TokenFormat};
use crate::permissions::GrantSet;

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
    pub token_format: TokenFormat,
    pub created_at: Timestamp,
}

/// A client secret to store: its digest, and the nonce it was derived from when the server
/// can compute it again for OAuth 1.0a signatures (docs/architecture.md, OAuth 1.0a).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewSecret {
    pub digest: Digest,
    pub derive_nonce: Option<[u8; 16]>,
}

impl From<Digest> for NewSecret {
    /// A secret minted at random.
    fn from(digest: Digest) -> Self {
        NewSecret {
            digest,
            derive_nonce: None,
        }
    }
}

/// An application as the console lists it.
#[derive(Clone, Debug)]
pub struct AppSummary {
    pub app: Application,
    /// The latest use of any refresh token of the application's account accesses; `None` if
    /// none was ever used.
    pub last_used_at: Option<Timestamp>,
}

/// Applications and their secrets.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Registers an application with its first client secret (absent for public clients).
    /// `Conflict("application")` if the org already has an application of that name.
    async fn create_application(
        &self,
        app: NewApplication,
        secret: Option<NewSecret>,
        audit: NewAudit,
    ) -> Result<Application>;
    async fn application_by_client_id(&self, client_id: &str) -> Result<Option<Application>>;
    /// Adds a new client secret and makes every older one expire at `old_expires_at` (or
    /// earlier, if it already expired sooner).
    async fn rotate_client_secret(
        &self,
        app: AppId,
        secret: NewSecret,
        now: Timestamp,
        old_expires_at: Timestamp,
        audit: NewAudit,
    ) -> Result<()>;
    /// The digests of the client secrets valid at `now`.
    async fn client_secrets(&self, app: AppId, now: Timestamp) -> Result<Vec<Digest>>;
    /// The applications of `org`, ordered by name.
    async fn applications(&self, org: OrgId) -> Result<Vec<AppSummary>>;
    /// Deletes an application with everything that belongs to it (client secrets, account
    /// accesses, refresh and access tokens, authorization codes) in one transaction with its
    /// audit record; its tokens are refused from the next request on, in every process within
    /// one second (docs/architecture.md, the credential cache). `false` (nothing recorded) if
    /// there is no such application.
    async fn delete_application(&self, app: AppId, audit: NewAudit) -> Result<bool>;
    /// Stores `new`'s name, description, scopes and redirect URIs for the application of
    /// `old.id`, with its audit record, only if those four are still as in `old`; `false`
    /// (nothing written) when they are not or the application is gone.
    /// `Conflict("application")` if the new name is another application's.
    async fn update_application(
        &self,
        old: &Application,
        new: &Application,
        audit: NewAudit,
    ) -> Result<bool>;
}
