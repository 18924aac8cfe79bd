//! Signed-in browser sessions of UI users (the sign-in page of the web-server flow).

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{User, UserId};

/// Browser sessions, stored by the digest of their id.
#[async_trait]
pub trait SessionStore: Send + Sync {
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
}
