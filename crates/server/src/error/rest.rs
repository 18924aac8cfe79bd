//! REST API failures: `meta.generalErrors` / `meta.fieldErrors` (docs/architecture.md, protected APIs) with the
//! right status, and the RFC 6750 challenge when a credential was refused.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::gate::BearerError;
use grantry_core::platform::data::DataError;

use super::{bearer, log_cause};

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
            DataError::Store(s) => RestError {
                cause: Some(s.to_string()),
                ..RestError::general(StatusCode::INTERNAL_SERVER_ERROR, "server error; try again")
            },
        }
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
