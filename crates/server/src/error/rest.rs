//! REST API failures: `meta.generalErrors` / `meta.fieldErrors` (docs/architecture.md, protected APIs) with the
//! right status, and the RFC 6750 challenge when a credential was refused.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::gate::BearerError;
use grantry_core::platform::data::DataError;

use axum::extract::rejection::{PathRejection, QueryRejection};

use super::{bearer, log_cause, BodyProblem, RouteProblem};

/// A REST API failure.
#[derive(Debug)]
pub struct RestError {
    pub status: StatusCode,
    pub general: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub refusal: Option<bearer::Refusal>,
    pub cause: Option<String>,
}

impl RestError {
    pub fn general(status: StatusCode, msg: impl Into<String>) -> Self {
        RestError {
            status,
            general: vec![msg.into()],
            fields: BTreeMap::new(),
            refusal: None,
            cause: None,
        }
    }

    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        RestError {
            status: StatusCode::BAD_REQUEST,
            general: vec![],
            fields: BTreeMap::from([(field.to_string(), msg.into())]),
            refusal: None,
            cause: None,
        }
    }
}

impl From<BearerError> for RestError {
    fn from(e: BearerError) -> Self {
        RestError {
            status: bearer::status(&e),
            general: vec![e.description.clone()],
            fields: BTreeMap::new(),
            refusal: Some(bearer::Refusal::of(&e)),
            cause: e.cause,
        }
    }
}

impl From<DataError> for RestError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Scope(b) => b.into(),
            DataError::NotFound(what) => {
                RestError::general(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            DataError::Conflict(m) => RestError::general(StatusCode::CONFLICT, m),
            DataError::Invalid {
                field: Some(f),
                message,
            } => RestError::field(f, message),
            DataError::Invalid {
                field: None,
                message,
            } => RestError::general(StatusCode::BAD_REQUEST, message),
            DataError::Store(s) if s.is_unavailable() => RestError {
                cause: Some(s.to_string()),
                ..RestError::general(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server cannot reach its database just now; nothing was changed, try again shortly",
                )
            },
            DataError::Store(s) => RestError {
                cause: Some(s.to_string()),
                ..RestError::general(StatusCode::INTERNAL_SERVER_ERROR, "server error; try again")
            },
        }
    }
}

impl From<BodyProblem> for RestError {
    fn from(p: BodyProblem) -> Self {
        RestError::general(p.status(), p.describe())
    }
}

impl From<RouteProblem> for RestError {
    fn from(p: RouteProblem) -> Self {
        let msg = match p {
            RouteProblem::NotFound => "no such REST resource",
            RouteProblem::MethodNotAllowed => {
                "this REST resource does not take this method; see the Allow header"
            }
        };
        RestError::general(p.status(), msg)
    }
}

/// A path segment that is not valid percent-encoded UTF-8, or one too many or too few.
impl From<PathRejection> for RestError {
    fn from(r: PathRejection) -> Self {
        RestError::general(
            StatusCode::BAD_REQUEST,
            format!("the path is not valid: {}", r.body_text()),
        )
    }
}

/// A query string that does not decode.
impl From<QueryRejection> for RestError {
    fn from(r: QueryRejection) -> Self {
        RestError::general(
            StatusCode::BAD_REQUEST,
            format!("the query string is not valid: {}", r.body_text()),
        )
    }
}

impl RestError {
    /// A body that is not `application/json`: 415.
    pub fn unsupported_media_type() -> Self {
        RestError::general(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json",
        )
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        response(self)
    }
}

pub(super) fn response(e: RestError) -> Response {
    log_cause(e.status, &e.cause);
    let body = json!({
        "meta": {"attributes": {}, "generalErrors": e.general, "fieldErrors": e.fields},
        "links": [],
        "data": null,
    });
    let mut resp = (e.status, Json(body)).into_response();
    if let Some(r) = e.refusal {
        r.apply(resp.headers_mut());
    }
    resp
}
