//! Limits on guessing secrets (docs/architecture.md, limits): one mechanism for every door
//! that checks a secret. Failures are counted per source address and door (in memory, by
//! the server's [`Throttle`]) and per [`Subject`] (in the store, so the counts hold across
//! instances); a subject past `limits.lockout_after` failures is locked with exponential
//! back-off up to `limits.lockout_max`, and a success clears it. While the source or the
//! subject must wait, the attempt is refused before its secret is checked.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::model::OrgId;
use crate::settings::LimitSettings;
use crate::store::{LockoutStore, StoreError};

/// Where a secret is checked. A source address is counted at each door on its own, so a
/// source refused at the sign-in page still reaches the APIs with a good key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Door {
    /// A UI user's password on the sign-in page.
    Login,
    /// A client's secret at the token endpoint family.
    Client,
    /// An API secret key: as a Bearer value, with `client_credentials`, or with HTTP Basic.
    ApiKey,
}

/// What one lock guards: an account, a client or a key, as the caller named it. Naming one
/// costs nothing; its [`Subject::key`] (its kind and a digest of the name, so any name a
/// client sends, long or with bytes no backend stores, makes a key of the same small size)
/// is made only when a lock may be involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subject<'a> {
    kind: &'static str,
    org: Option<OrgId>,
    name: &'a str,
}

impl<'a> Subject<'a> {
    /// The platform operator's token (docs/architecture.md, the admin API): one subject,
    /// so guessing at it is slowed down like guessing at one account.
    pub fn operator() -> Self {
        Subject {
            kind: "operator",
            org: None,
            name: "",
        }
    }

    /// A UI user of an org, by username (the sign-in page).
    pub fn user(org: OrgId, username: &'a str) -> Self {
        Subject {
            kind: "user",
            org: Some(org),
            name: username,
        }
    }

    /// An application, by client id.
    pub fn client(client_id: &'a str) -> Self {
        Subject {
            kind: "client",
            org: None,
            name: client_id,
        }
    }

    /// An API user, by Key ID.
    pub fn key_id(key_id: &'a str) -> Self {
        Subject {
            kind: "key",
            org: None,
            name: key_id,
        }
    }

    /// An API user, by username (HTTP Basic names no org).
    pub fn basic(username: &'a str) -> Self {
        Subject {
            kind: "basic",
            org: None,
            name: username,
        }
    }

    /// The subject as the store and the limiter's maps know it.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        if let Some(org) = self.org {
            h.update(org.to_string().as_bytes());
            h.update(b":");
        }
        h.update(self.name.as_bytes());
        format!("{}:{}", self.kind, URL_SAFE_NO_PAD.encode(h.finalize()))
    }
}

/// Who must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// The source address made too many failed attempts at this door.
    Source,
    /// The account, client or key is locked after repeated failures.
    Subject,
}

/// An attempt refused because its source or subject must wait; answered 429 with
/// `Retry-After` in the protocol's own format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub waiting: Waiting,
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds to wait, rounded up, at least one (`Retry-After`, RFC 9110 §10.2.3).
    pub fn retry_after_secs(&self) -> u64 {
        let ms = self.retry_after.as_millis();
        u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX).max(1)
    }

    /// What the client is told.
    pub fn describe(&self) -> String {
        let who = match self.waiting {
            Waiting::Source => "too many failed attempts from this address",
            Waiting::Subject => "too many failed attempts for this account",
        };
        format!("{who}; try again in {} s", self.retry_after_secs())
    }
}

/// The server's limiter, used by every door through an [`Attempt`].
#[async_trait]
pub trait Throttle: Send + Sync {
    /// Whether an attempt may go ahead: `Err` while its source (at `door`) or `subject`
    /// must wait. Cheap: no store call.
    fn admit(&self, door: Door, source: Option<IpAddr>, subject: &Subject)
        -> Result<(), Throttled>;
    /// Counts a failed attempt against the source at `door` and, when given, the subject
    /// (only subjects that exist are counted in the store, so made-up names cost nothing).
    async fn failed(
        &self,
        door: Door,
        source: Option<IpAddr>,
        subject: Option<&Subject<'_>>,
    ) -> Result<(), StoreError>;
    /// A success at `door`: the subject's failures are forgotten.
    async fn succeeded(&self, door: Door, subject: &Subject<'_>) -> Result<(), StoreError>;
}

/// One request at a door: the limiter and the request's source address.
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    pub throttle: &'a dyn Throttle,
    pub source: Option<IpAddr>,
}

impl<'a> Attempt<'a> {
    pub fn new(throttle: &'a dyn Throttle, source: Option<IpAddr>) -> Self {
        Attempt { throttle, source }
    }

    pub fn admit(&self, door: Door, subject: &Subject<'_>) -> Result<(), Throttled> {
        self.throttle.admit(door, self.source, subject)
    }

    pub async fn failed(
        &self,
        door: Door,
        subject: Option<&Subject<'_>>,
    ) -> Result<(), StoreError> {
        self.throttle.failed(door, self.source, subject).await
    }

    pub async fn succeeded(&self, door: Door, subject: &Subject<'_>) -> Result<(), StoreError> {
        self.throttle.succeeded(door, subject).await
    }
}

/// Counts one failure of `subject` in the store at `now` and, past the threshold, locks it
/// with back-off; returns the lock's end if it is locked now.
pub async fn count_failure(
    store: &dyn LockoutStore,
    limits: &LimitSettings,
    subject: &Subject<'_>,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let forget_before = now.minus(limits.failure_memory);
    let key = subject.key();
    let failures = store.count_failure(&key, now, forget_before).await?;
    let Some(lock) = limits.lockout(failures) else {
        return Ok(None);
    };
    let count = store.lock_subject(&key, now.plus(lock)).await?;
    Ok(count.locked_until)
}

/// A limiter that admits everything and counts nothing: for the command line, which checks
/// no client's secret.
pub struct Unlimited;

#[async_trait]
impl Throttle for Unlimited {
    fn admit(&self, _: Door, _: Option<IpAddr>, _: &Subject<'_>) -> Result<(), Throttled> {
        Ok(())
    }

    async fn failed(
        &self,
        _: Door,
        _: Option<IpAddr>,
        _: Option<&Subject<'_>>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn succeeded(&self, _: Door, _: &Subject<'_>) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let t = |ms| Throttled {
            waiting: Waiting::Subject,
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(t(0).retry_after_secs(), 1);
        assert_eq!(t(1000).retry_after_secs(), 1);
        assert_eq!(t(1001).retry_after_secs(), 2);
        assert!(t(2500).describe().ends_with("try again in 3 s"));
    }

    #[test]
    fn subjects_are_small_storable_keys_that_tell_kinds_and_names_apart() {
        let long = "x".repeat(10_000);
        for s in [
            Subject::user(1, "a\0b"),
            Subject::client(&long),
            Subject::basic(""),
        ] {
            assert!(s.key().len() < 64, "{}", s.key());
            assert!(s.key().bytes().all(|b| b.is_ascii_graphic()));
        }
        assert_ne!(Subject::key_id("k").key(), Subject::basic("k").key());
        assert_ne!(Subject::user(1, "ann").key(), Subject::user(2, "ann").key());
        assert_ne!(Subject::user(1, "2:x").key(), Subject::user(12, "x").key());
        assert_eq!(Subject::client("c").key(), Subject::client("c").key());
    }
}
