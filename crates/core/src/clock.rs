//! Time as a parameter: every protocol decision takes a [`Timestamp`] read once per request
//! from a [`Clock`], so tests drive the 3-hour re-issue window and the key grace period with a
//! [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as i64))
    }

    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(d.as_millis() as i64))
    }

    /// Whole seconds fully remaining until `until`, not counting the current partial second:
    /// a token that lives exactly 4 h reports 14399 at the instant it is issued.
    pub fn whole_seconds_until(self, until: Timestamp) -> u64 {
        let ms = until.0 - self.0;
        if ms <= 0 {
            0
        } else {
            ((ms - 1) / 1000) as u64
        }
    }

    /// Seconds until `until`, rounded up (for `Retry-After`).
    pub fn seconds_until_ceil(self, until: Timestamp) -> u64 {
        let ms = until.0 - self.0;
        if ms <= 0 {
            0
        } else {
            ((ms + 999) / 1000) as u64
        }
    }

    /// RFC 3339 in UTC with second precision, e.g. `2026-11-23T19:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp(self.0.div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        dt.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.0.to_string())
    }

    /// Parses RFC 3339 (`2026-11-23T19:00:00Z`).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let dt =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        Some(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

/// The source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

/// A clock that only moves when told to; for tests and benchmarks.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_four_hour_token_reports_14399() {
        let t = Timestamp(1_000_000);
        assert_eq!(
            t.whole_seconds_until(t.plus(Duration::from_secs(4 * 3600))),
            14399
        );
        assert_eq!(t.whole_seconds_until(t), 0);
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp(1_795_000_000_000);
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }
}
