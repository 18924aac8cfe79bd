//! API users' secret keys: two slots, promotion, a grace after deletion, and the
//! short-lived tokens of the deprecated `client_credentials` path.

use async_trait::async_trait;

use super::{NewAccessToken, NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{ApiKey, User, UserId};

/// What [`ApiKeyStore::delete_api_key`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedKey {
    pub key: ApiKey,
    /// Set when slot 1 was deleted and the key in slot 2 moved into slot 1.
    pub promoted: bool,
}

/// Secret keys of API users.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Adds a secret key in the free slot (1, else 2), serialized per user.
    /// `Conflict("secret key")` when both slots are taken; `NotFound("API user")` if the user
    /// is not an API user.
    async fn generate_api_key(
        &self,
        user: UserId,
        digest: Digest,
        now: Timestamp,
        audit: NewAudit,
    ) -> Result<ApiKey>;
    /// Deletes the live key in `slot`: it loses its slot and keeps working until `stops_at`.
    /// Deleting slot 1 promotes the key in slot 2 to slot 1. Serialized per user with
    /// [`ApiKeyStore::generate_api_key`]. `None` if the slot is empty.
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
    /// Records that the key `key` (whose digest is `digest`) opened an API at `now`; a later
    /// time already recorded is kept. The key's cached record says so afterwards, so callers
    /// that write only when [`ApiKey::use_is_news`] write once a minute per key.
    async fn mark_api_key_used(&self, digest: &Digest, key: i64, now: Timestamp) -> Result<()>;
    /// Stores an access token minted from an API secret key (the deprecated
    /// `client_credentials` path).
    async fn issue_key_token(
        &self,
        key: &ApiKey,
        user: &User,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> Result<i64>;
}
