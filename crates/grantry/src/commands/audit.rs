//! `grantry audit`: an organization's audit log, oldest first.

use serde_json::{json, Value};

use grantry_core::admin::{self, Ctx};
use grantry_core::store::AuditEvent;
use grantry_core::Timestamp;

use crate::cli::AuditArgs;
use crate::config::parse_duration;
use crate::error::{CliError, Result};
use crate::report::Report;

/// The events of one organization, from `--since` on.
pub struct AuditLog {
    pub(crate) events: Vec<AuditEvent>,
}

pub async fn show(cx: &Ctx<'_>, args: AuditArgs) -> Result<AuditLog> {
    let since = args.since.map(|s| parse_since(&s, cx.now)).transpose()?;
    let events = admin::audit_log(cx, &args.org, since).await?;
    Ok(AuditLog { events })
}

/// An RFC 3339 time, or a duration before `now`.
pub(crate) fn parse_since(s: &str, now: Timestamp) -> Result<Timestamp> {
    Timestamp::parse_rfc3339(s)
        .or_else(|| parse_duration(s).ok().map(|d| now.minus(d)))
        .ok_or_else(|| CliError::Since(s.into()))
}

impl Report for AuditLog {
    fn json(&self) -> Value {
        let events = self.events.iter().map(|ev| {
            json!({
                "id": ev.id,
                "at": ev.at.to_rfc3339(),
                "actor": ev.actor,
                "action": ev.action,
                "target": ev.target,
                "detail": ev.detail,
                "count": ev.count,
                "last_at": ev.last_at.to_rfc3339(),
            })
        });
        Value::Array(events.collect())
    }

    fn text(&self) -> String {
        if self.events.is_empty() {
            return "No audit events.".into();
        }
        let lines: Vec<String> = self.events.iter().map(event_line).collect();
        lines.join("\n")
    }
}

fn event_line(ev: &AuditEvent) -> String {
    let detail = if ev.detail.is_null() {
        String::new()
    } else {
        format!(" {}", ev.detail)
    };
    let repeated = if ev.count > 1 {
        format!(" ({} times, last at {})", ev.count, ev.last_at.to_rfc3339())
    } else {
        String::new()
    };
    format!(
        "{}  {:<28} {:<24} {}{detail}{repeated}",
        ev.at.to_rfc3339(),
        ev.action,
        ev.actor,
        ev.target
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn event(id: i64, action: &str, detail: Value) -> AuditEvent {
        AuditEvent {
            id,
            org_id: Some(1),
            at: at("2026-11-23T19:00:00Z"),
            actor: "cli".into(),
            action: action.into(),
            target: "user:bot".into(),
            detail,
            count: 1,
            last_at: at("2026-11-23T19:00:00Z"),
        }
    }

    #[test]
    fn since_is_a_time_or_a_duration_ago() {
        let now = at("2026-11-23T19:00:00Z");
        assert_eq!(
            parse_since("2026-11-20T08:00:00Z", now).unwrap(),
            at("2026-11-20T08:00:00Z")
        );
        assert_eq!(
            parse_since("90m", now).unwrap(),
            now.minus(Duration::from_secs(90 * 60))
        );
        assert_eq!(
            parse_since("whenever", now).unwrap_err().to_string(),
            "--since \"whenever\" is neither an RFC 3339 time nor a duration like 1h"
        );
    }

    #[test]
    fn json_is_cores_serialization_of_each_event() {
        let log = AuditLog {
            events: vec![
                event(7, "user.disabled", Value::Null),
                event(8, "api_key.generated", json!({"slot": 1})),
            ],
        };
        assert_eq!(
            log.json().to_string(),
            concat!(
                r#"[{"id":7,"at":"2026-11-23T19:00:00Z","actor":"cli","action":"user.disabled","target":"user:bot","detail":null,"count":1,"last_at":"2026-11-23T19:00:00Z"},"#,
                r#"{"id":8,"at":"2026-11-23T19:00:00Z","actor":"cli","action":"api_key.generated","target":"user:bot","detail":{"slot":1},"count":1,"last_at":"2026-11-23T19:00:00Z"}]"#
            )
        );
        let core = serde_json::to_string(&log.events).unwrap();
        assert_eq!(log.json().to_string(), core);
    }

    #[test]
    fn text_has_one_aligned_line_per_event() {
        let log = AuditLog {
            events: vec![
                event(7, "user.disabled", Value::Null),
                event(8, "api_key.generated", json!({"slot": 1})),
            ],
        };
        assert_eq!(
            log.text(),
            format!(
                "2026-11-23T19:00:00Z  user.disabled{} cli{} user:bot\n\
                 2026-11-23T19:00:00Z  api_key.generated{} cli{} user:bot {{\"slot\":1}}",
                " ".repeat(15),
                " ".repeat(21),
                " ".repeat(11),
                " ".repeat(21)
            )
        );
        let mut failed = event(9, "authentication.failed", Value::Null);
        failed.count = 3;
        failed.last_at = at("2026-11-23T19:20:00Z");
        let repeated = AuditLog {
            events: vec![failed],
        };
        assert_eq!(
            repeated.text(),
            format!(
                "2026-11-23T19:00:00Z  authentication.failed{} cli{} user:bot \
                 (3 times, last at 2026-11-23T19:20:00Z)",
                " ".repeat(7),
                " ".repeat(21)
            )
        );
        assert_eq!(repeated.json()[0]["count"], 3);
        assert_eq!(repeated.json()[0]["last_at"], "2026-11-23T19:20:00Z");
        let empty = AuditLog { events: vec![] };
        assert_eq!(empty.json().to_string(), "[]");
        assert_eq!(empty.text(), "No audit events.");
    }
}
