//! Failed authentications counted per subject (an account, a client or a key, named by
//! [`crate::limits::Subject`]), for lockout with back-off (docs/architecture.md, limits).
//! The counts live in the store so that every instance sharing it sees the same ones.

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;

/// A subject's failures as counted after one more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures counted since the last success, or since the count was forgotten.
    pub failures: u32,
    /// Until when the subject is locked, if it is.
    pub locked_until: Option<Timestamp>,
}

/// Failed authentications per subject.
#[async_trait]
pub trait LockoutStore: Send + Sync {
    /// Counts one failure of `subject` at `now`, atomically: N concurrent calls count N. A
    /// count whose last failure is older than `forget_before` starts again at one.
    async fn count_failure(
        &self,
        subject: &str,
        now: Timestamp,
        forget_before: Timestamp,
    ) -> Result<u32>;
    /// Locks `subject` until `until`, or keeps a later lock already in place.
    async fn lock_subject(&self, subject: &str, until: Timestamp) -> Result<FailureCount>;
    /// Forgets `subject`'s failures and lock (a success).
    async fn clear_failures(&self, subject: &str) -> Result<()>;
    /// Every subject locked after `now`, with its lock's end: what each instance mirrors.
    async fn active_lockouts(&self, now: Timestamp) -> Result<Vec<(String, Timestamp)>>;
    /// Forgets counts whose last failure is older than `before`; returns how many.
    async fn purge_failures(&self, before: Timestamp) -> Result<u64>;
}
