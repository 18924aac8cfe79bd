//! The XML API's `Login` sessions (docs/architecture.md, XML API sessions), stored by the
//! digest of their id.

use async_trait::async_trait;

use super::{NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{ApiKey, OrgId, User};

/// A session as a call finds it: its record, the API user and the secret key that opened it.
#[derive(Clone, Debug)]
pub struct XmlSession {
    pub id: i64,
    pub org_id: OrgId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub user: User,
    pub key: ApiKey,
}

/// What starting a session came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStart {
    Started,
    /// The org already has `max_per_org` live sessions; nothing was written.
    OrgFull,
}

/// The bounds a new session is started under.
#[derive(Clone, Copy, Debug)]
pub struct SessionBounds {
    /// How long past `last_seen_at` a session stays live.
    pub live_for: std::time::Duration,
    /// At most this many live sessions per org.
    pub max_per_org: u32,
}

/// `Login` sessions. A session is live at `now` while `now <= last_seen_at + live_for`; the
/// caller passes `live_for` (the idle timeout plus the touch interval of
/// docs/architecture.md, XML API sessions).
#[async_trait]
pub trait XmlSessionStore: Send + Sync {
    /// Starts a session for `key` of `user` at `now` with its `audit`, unless `user`'s org
    /// already has `bounds.max_per_org` sessions live at `now`. Counting and inserting are one
    /// atomic step: of two starts racing for the last place, exactly one succeeds.
    async fn start_xml_session(
        &self,
        digest: Digest,
        user: &User,
        key: &ApiKey,
        now: Timestamp,
        bounds: SessionBounds,
        audit: NewAudit,
    ) -> Result<SessionStart>;
    /// The session with this digest, live at `now`, with its user and key as they are now
    /// (read from the database, never from a cache); `None` if unknown, ended or idle too
    /// long.
    async fn xml_session(
        &self,
        digest: &Digest,
        now: Timestamp,
        live_for: std::time::Duration,
    ) -> Result<Option<XmlSession>>;
    /// Records `now` as session `id`'s latest call (the time never moves back).
    async fn touch_xml_session(&self, id: i64, now: Timestamp) -> Result<()>;
    /// Ends the session with this digest, with its `audit`; `false` if there was none.
    async fn end_xml_session(&self, digest: &Digest, audit: NewAudit) -> Result<bool>;
}
