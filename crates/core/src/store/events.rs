//! The Event API's events, stored durably.

use async_trait::async_trait;

use super::Result;
use crate::model::{Event, OrgId};

/// Events received through the Event API.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores an event durably; returns once committed.
    async fn record_event(&self, event: &Event) -> Result<()>;
    /// Events of an org, oldest first (for tests and exports).
    async fn events(&self, org: OrgId) -> Result<Vec<Event>>;
}
