//! The Event API: `POST /campaignapi/resources/v3/events` with
//! `{"event-id", "event-key", "event-params"}`, stored durably and answered with a
//! `transaction-id`. Errors are `{"code": N, "description": ...}`.

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::credential;
use crate::gate::{BearerError, BearerErrorCode, Principal};
use crate::model::Event;
use crate::permissions::Grant;
use crate::store::EventStore;

/// Most parameters one event may carry.
pub const MAX_PARAMS: usize = 400;
/// Largest request body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
const MAX_ID: usize = 256;
const MAX_VALUE: usize = 4096;

/// The Event API's error codes.
pub mod code {
    pub const INVALID_JSON: u32 = 1000;
    pub const MISSING_FIELD: u32 = 1001;
    pub const INVALID_FIELD: u32 = 1002;
    pub const TOO_MANY_PARAMS: u32 = 1003;
    pub const BODY_TOO_LARGE: u32 = 1004;
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 1005;
    /// The body did not arrive within the server's body read timeout.
    pub const BODY_TIMEOUT: u32 = 1006;
    /// No such Event API resource, or not for this method.
    pub const NO_SUCH_RESOURCE: u32 = 1007;
    pub const UNAUTHORIZED: u32 = 2001;
    pub const FORBIDDEN: u32 = 2003;
    pub const TOO_MANY_ATTEMPTS: u32 = 2029;
    pub const SERVER_ERROR: u32 = 5000;
    /// The database is unavailable for now; send the event again shortly.
    pub const UNAVAILABLE: u32 = 5003;
}

/// What kind of failure an [`EventError`] is; `grantry-server` answers each with its HTTP
/// status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventErrorKind {
    /// The request is malformed or invalid.
    BadRequest,
    /// The body is larger than [`MAX_BODY`].
    TooLarge,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// No, or a bad, credential.
    Unauthenticated,
    /// The credential lacks `events:write`.
    Forbidden,
    /// Too many failed attempts from the source or for the key (docs/architecture.md, limits).
    TooManyAttempts,
    /// The server failed; the client may send the event again.
    Server,
    /// The database is unavailable for now: 503 with `Retry-After`.
    Unavailable,
}

/// An Event API failure: its kind, code and description. `cause` is never sent.
#[derive(Clone, Debug)]
pub struct EventError {
    pub kind: EventErrorKind,
    pub code: u32,
    pub description: String,
    pub cause: Option<String>,
}

impl EventError {
    pub fn new(kind: EventErrorKind, code: u32, description: impl Into<String>) -> Self {
        EventError {
            kind,
            code,
            description: description.into(),
            cause: None,
        }
    }

    pub fn bad(code: u32, d: impl Into<String>) -> Self {
        Self::new(EventErrorKind::BadRequest, code, d)
    }

    pub fn too_large() -> Self {
        Self::new(
            EventErrorKind::TooLarge,
            code::BODY_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            EventErrorKind::UnsupportedMediaType,
            code::UNSUPPORTED_MEDIA_TYPE,
            "send the event as Content-Type: application/json",
        )
    }
}

impl From<&BearerError> for EventError {
    fn from(e: &BearerError) -> Self {
        use EventErrorKind::*;
        let (kind, c) = match e.code {
            Some(BearerErrorCode::InsufficientScope) => (Forbidden, code::FORBIDDEN),
            Some(BearerErrorCode::ServerError) => (Server, code::SERVER_ERROR),
            Some(BearerErrorCode::TemporarilyUnavailable) => (Unavailable, code::UNAVAILABLE),
            Some(BearerErrorCode::InvalidRequest) => (BadRequest, code::UNAUTHORIZED),
            Some(BearerErrorCode::TooManyAttempts) => (TooManyAttempts, code::TOO_MANY_ATTEMPTS),
            _ => (Unauthenticated, code::UNAUTHORIZED),
        };
        EventError {
            kind,
            code: c,
            description: e.description.clone(),
            cause: e.cause.clone(),
        }
    }
}

fn text_field(obj: &Map<String, Value>, name: &str) -> Result<String, EventError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(EventError::bad(
            code::MISSING_FIELD,
            format!("{name} is required"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Err(EventError::bad(
            code::MISSING_FIELD,
            format!("{name} must not be empty"),
        )),
        Some(Value::String(s)) if s.len() > MAX_ID => Err(EventError::bad(
            code::INVALID_FIELD,
            format!("{name} is longer than {MAX_ID} characters"),
        )),
        Some(Value::String(s)) if !crate::validate::storable(s) => Err(EventError::bad(
            code::INVALID_FIELD,
            format!("{name} must not contain a NUL character"),
        )),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(EventError::bad(
            code::INVALID_FIELD,
            format!("{name} must be a string"),
        )),
    }
}

/// Validates an event body into its parts (no store, no clock).
pub fn parse(body: &[u8]) -> Result<(String, String, Map<String, Value>), EventError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        EventError::bad(
            code::INVALID_JSON,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(obj) = v else {
        return Err(EventError::bad(
            code::INVALID_JSON,
            "the body must be a JSON object",
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "event-id" | "event-key" | "event-params"))
    {
        return Err(EventError::bad(
            code::INVALID_FIELD,
            format!("unknown field {k}; an event has event-id, event-key and event-params"),
        ));
    }
    let event_id = text_field(&obj, "event-id")?;
    let event_key = text_field(&obj, "event-key")?;
    let params = match obj.get("event-params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(EventError::bad(
                code::INVALID_FIELD,
                "event-params must be an object",
            ))
        }
    };
    if params.len() > MAX_PARAMS {
        return Err(EventError::bad(
            code::TOO_MANY_PARAMS,
            format!(
                "event-params has {} entries; at most {MAX_PARAMS} are allowed",
                params.len()
            ),
        ));
    }
    for (k, v) in &params {
        let ok = match v {
            Value::String(s) => s.len() <= MAX_VALUE,
            Value::Number(_) | Value::Bool(_) | Value::Null => true,
            _ => false,
        };
        if !ok || k.is_empty() {
            return Err(EventError::bad(
                code::INVALID_FIELD,
                format!("event-params.{k} must be a string (at most {MAX_VALUE} characters), number, boolean or null"),
            ));
        }
    }
    Ok((event_id, event_key, params))
}

/// Checks the grant, validates the event and stores it; the transaction id is returned only
/// after the event is committed.
pub async fn submit(
    store: &dyn EventStore,
    now: Timestamp,
    p: &Principal,
    body: &[u8],
) -> Result<String, EventError> {
    p.require(Grant::EventsWrite)
        .map_err(|e| EventError::from(&e))?;
    let (event_id, event_key, params) = parse(body)?;
    let event = Event {
        transaction_id: credential::new_id(),
        org_id: p.org_id,
        user_id: p.user_id,
        event_id,
        event_key,
        params,
        received_at: now,
    };
    store.record_event(&event).await.map_err(|e| {
        let (kind, c, d) = if e.is_unavailable() {
            (
                EventErrorKind::Unavailable,
                code::UNAVAILABLE,
                "the server cannot reach its database just now; the event was not stored, send it again shortly",
            )
        } else {
            (
                EventErrorKind::Server,
                code::SERVER_ERROR,
                "the event could not be stored; send it again",
            )
        };
        EventError {
            cause: Some(e.to_string()),
            ..EventError::new(kind, c, d)
        }
    })?;
    Ok(event.transaction_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_example() {
        let (id, key, params) =
            parse(br#"{"event-id": "evt_15675803030001", "event-key": "john@example.com", "event-params": {"EMAIL": "john"}}"#)
                .unwrap();
        assert_eq!(
            (id.as_str(), key.as_str()),
            ("evt_15675803030001", "john@example.com")
        );
        assert_eq!(params["EMAIL"], "john");
    }

    #[test]
    fn refuses_what_is_wrong_with_the_right_code() {
        let cases: [(&[u8], u32); 6] = [
            (b"{", code::INVALID_JSON),
            (b"[]", code::INVALID_JSON),
            (br#"{"event-key": "k"}"#, code::MISSING_FIELD),
            (br#"{"event-id": 5, "event-key": "k"}"#, code::INVALID_FIELD),
            (
                br#"{"event-id": "i", "event-key": "k", "event-params": {"a": {"b": 1}}}"#,
                code::INVALID_FIELD,
            ),
            (
                br#"{"event-id": "i", "event-key": "k", "extra": 1}"#,
                code::INVALID_FIELD,
            ),
        ];
        for (body, c) in cases {
            assert_eq!(
                parse(body).unwrap_err().code,
                c,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many: Map<String, Value> = (0..=MAX_PARAMS)
            .map(|i| (format!("p{i}"), Value::from(i)))
            .collect();
        let body = serde_json::json!({"event-id": "i", "event-key": "k", "event-params": many})
            .to_string();
        assert_eq!(
            parse(body.as_bytes()).unwrap_err().code,
            code::TOO_MANY_PARAMS
        );
    }
}
