//! The audit log: every admin change and credential event of the org, newest first, filtered
//! by actor, kind and time, a page at a time.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;

use grantry_core::admin;
use grantry_core::store::AuditQuery;
use grantry_core::Timestamp;

use super::{when, Chrome, Console};
use crate::error::console::ConsoleError;
use crate::AppState;

/// Events on one page.
const PAGE: u32 = 50;

/// The kinds of event the filter offers: an action prefix and its label.
const KINDS: [(&str, &str); 8] = [
    ("", "All"),
    ("application.", "Applications"),
    ("account_access.", "Account access"),
    ("user.", "Users"),
    ("api_key.", "API keys"),
    ("access_token.", "Access tokens"),
    ("refresh_token.", "Refresh tokens"),
    ("authentication.", "Refused authentications"),
];

/// The filter, as the form sends it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Filter {
    actor: String,
    kind: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    from: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    to: String,
    /// The cursor: `<at ms>.<id>` of the last event of the previous page.
    before: String,
}

struct Row {
    at: String,
    actor: String,
    action: String,
    target: String,
    count: i64,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<Row>,
    actor: String,
    kind: String,
    from: String,
    to: String,
    kinds: Vec<(&'static str, &'static str)>,
    /// The query string of the next page, when there may be one.
    next: Option<String>,
    error: Option<String>,
}

/// A `YYYY-MM-DD` day's start, UTC.
fn day(s: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(&format!("{s}T00:00:00Z"))
}

/// `GET /console/audit`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
    Query(f): Query<Filter>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let mut error = None;
    let mut q = AuditQuery {
        limit: PAGE,
        ..AuditQuery::default()
    };
    if !f.actor.trim().is_empty() {
        q.actor = Some(f.actor.trim().to_string());
    }
    if let Some((prefix, _)) = KINDS.iter().find(|(p, _)| !p.is_empty() && *p == f.kind) {
        q.action_prefix = Some((*prefix).to_string());
    }
    for (text, slot, days) in [(&f.from, &mut q.from, 0u64), (&f.to, &mut q.to, 1)] {
        if text.is_empty() {
            continue;
        }
        match day(text) {
            Some(t) => *slot = Some(t.plus(std::time::Duration::from_secs(days * 86400))),
            None => error = Some(format!("{text:?} is not a date; use YYYY-MM-DD.")),
        }
    }
    if let Some((at, id)) = f.before.split_once('.') {
        if let (Ok(at), Ok(id)) = (at.parse(), id.parse()) {
            q.before = Some((Timestamp(at), id));
        }
    }
    let cx = console.ctx(&state);
    let events = admin::audit_page(&cx, &console.org.name, &q)
        .await
        .map_err(ConsoleError::reading)?;
    let next = match (events.len() as u32 == PAGE, events.last()) {
        (true, Some(last)) => Some(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("actor", &f.actor)
                .append_pair("kind", &f.kind)
                .append_pair("from", &f.from)
                .append_pair("to", &f.to)
                .append_pair("before", &format!("{}.{}", last.at.0, last.id))
                .finish(),
        ),
        _ => None,
    };
    let rows = events
        .into_iter()
        .map(|e| Row {
            at: when(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            count: e.count,
            detail: match e.detail {
                serde_json::Value::Null => String::new(),
                d => d.to_string(),
            },
        })
        .collect();
    Ok(console.render(&AuditPage {
        chrome: console.chrome("audit"),
        rows,
        actor: f.actor,
        kind: f.kind,
        from: f.from,
        to: f.to,
        kinds: KINDS.to_vec(),
        next,
        error,
    }))
}
