//! The storage contracts, in domain words: one narrow trait per concern, each with its
//! contract written on it. `grantry-store` implements them for SQLite and PostgreSQL; its
//! conformance suite holds both backends to what is written here.
//!
//! [`Store`] is the supertrait of them all. A function that takes `&dyn TokenStore` may touch
//! tokens and nothing else; a flow that spans several concerns takes `&dyn Store`, which
//! coerces to any of them.
//!
//! Every mutation that an admin or a credential event causes takes the [`NewAudit`] that
//! records it and writes both in one transaction: nothing is acknowledged without its record.

use async_trait::async_trait;

mod account_access;
mod api_keys;
pub mod audit;
mod clients;
mod data;
mod directory;
pub mod error;
mod events;
mod lockouts;
mod oauth1;
pub mod retention;
mod sessions;
mod signing_keys;
mod tokens;
mod xml_sessions;

pub use account_access::{AccessSummary, AccountAccessStore, Consent, NewAuthCode, Redemption};
pub use api_keys::{ApiKeyStore, DeletedKey};
pub use audit::{
    AuditEvent, AuditQuery, AuditStore, IdempotencyRecord, IdempotentRequest, NewAudit,
};
pub use clients::{AppSummary, ClientStore, NewApplication, NewSecret};
pub use data::{ContactKey, DataStore};
pub use directory::{DirectoryStore, NewUser};
pub use error::{StoreError, RETRY_AFTER_SECS};
pub use events::EventStore;
pub use lockouts::{FailureCount, LockoutStore};
pub use oauth1::{
    DerivableSecret, Exchange, NewRequestToken, OAuth1Store, OAuth1TokenRecord, RequestTokenRecord,
};
pub use retention::{RetentionStore, SweepReport};
pub use sessions::SessionStore;
pub use signing_keys::{SigningKey, SigningKeyStore};
pub use tokens::{
    BearerRecord, DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Reissue,
    Revocation, Rotation, TokenOwner, TokenRefusal, TokenStore,
};
pub use xml_sessions::{SessionBounds, SessionStart, XmlSession, XmlSessionStore};

pub type Result<T> = std::result::Result<T, StoreError>;

/// A store's own figures, read at a metrics scrape.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub pools: Vec<PoolStats>,
    /// How long ago the credential cache last confirmed the authorization epoch; `None`
    /// before the first confirmation.
    pub epoch_confirmed_ago: Option<std::time::Duration>,
}

/// One connection pool.
#[derive(Clone, Debug)]
pub struct PoolStats {
    pub name: &'static str,
    /// Connections open now.
    pub size: u32,
    /// Of those, the ones not in use.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// Live sign-in sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveSessions {
    /// Console and consent-page sessions.
    pub console: i64,
    /// XML API `Login` sessions.
    pub xml: i64,
}

/// Persistent state of grantry: every storage contract, and a liveness probe.
#[async_trait]
pub trait Store:
    DirectoryStore
    + SessionStore
    + ClientStore
    + AccountAccessStore
    + TokenStore
    + ApiKeyStore
    + DataStore
    + EventStore
    + AuditStore
    + SigningKeyStore
    + LockoutStore
    + OAuth1Store
    + RetentionStore
    + XmlSessionStore
    + Send
    + Sync
    + 'static
{
    /// Cheap liveness probe of the database.
    async fn ping(&self) -> Result<()>;

    /// What the store can say about itself without a query: its connection pools and when
    /// the credential cache last confirmed the authorization epoch (for `GET /metrics`).
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    /// How many console and XML API sessions are live at `now`.
    async fn live_sessions(&self, now: crate::clock::Timestamp) -> Result<LiveSessions>;

    /// Closes the database at shutdown, once nothing is in flight: what was committed stays,
    /// and SQLite checkpoints its WAL.
    async fn close(&self) {}
}
