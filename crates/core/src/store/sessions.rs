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
    /// The user of a session that is live at `now` (not expired, seen at or after
    /// `idle_since`, its user a UI user and not disabled), recording `now` as the session's
    /// latest request when the one recorded is before `record_before` (so that a session
    /// in use costs a write once in a while, not on every request); `None`, recording
    /// nothing, otherwise. A session not seen since it began was last seen when it began.
    async fn touch_session(
        &self,
        digest: &Digest,
        now: Timestamp,
        idle_since: Timestamp,
        record_before: Timestamp,
    ) -> Result<Option<User>>;
    /// Ends a session (signing out); nothing happens if there is none.
    async fn delete_session(&self, digest: &Digest) -> Result<()>;
}
