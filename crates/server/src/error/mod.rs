//! The one place that turns outcomes into HTTP: status codes, `WWW-Authenticate`,
//! `Cache-Control`, and each protocol's error body, one file per family: the token endpoint
//! family and the authorization endpoint (`oauth`), RFC 6750 (`bearer`), the XML API's
//! `Fault` (`xml`), the REST API's `meta` (`rest`), the Event API's `{code, description}`
//! (`events`). Internal causes are logged here and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use grantry_core::gate::BearerError;
use grantry_core::oauth::authorize::AuthorizeError;
use grantry_core::oauth::OAuthError;
use grantry_core::platform::data::DataError;
use grantry_core::platform::events::EventError;
use grantry_core::platform::xmlapi::Fault;

pub mod bearer;
pub mod events;
pub mod oauth;
pub mod rest;
pub mod xml;

pub use rest::RestError;

/// A failed request, in the format of the protocol it came in on.
#[derive(Debug)]
pub enum ApiError {
    /// Token endpoint family: RFC 6749 §5.2.
    OAuth(OAuthError),
    /// XML API: a `Fault` envelope, with the RFC 6750 challenge when authentication failed.
    Xml(Fault, Option<bearer::Refusal>),
    /// REST API: `meta.generalErrors` / `meta.fieldErrors`.
    Rest(RestError),
    /// Authorization endpoint: rendered to the user, or redirected to the client
    /// (RFC 6749 §4.1.2.1).
    Authorize(AuthorizeError),
    /// Event API: `{"code", "description"}`, with the RFC 6750 challenge when authentication
    /// failed.
    Event(EventError, Option<bearer::Refusal>),
}

impl ApiError {
    /// An Event API authentication or grant failure, with the RFC 6750 challenge.
    pub fn event_bearer(e: &BearerError) -> Self {
        ApiError::Event(EventError::from(e), Some(bearer::Refusal::of(e)))
    }

    /// An XML API authentication or grant failure: a Fault plus the RFC 6750 challenge.
    pub fn xml_bearer(e: &BearerError) -> Self {
        ApiError::Xml(Fault::from_bearer(e), Some(bearer::Refusal::of(e)))
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        ApiError::Event(e, None)
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl From<Fault> for ApiError {
    fn from(e: Fault) -> Self {
        ApiError::Xml(e, None)
    }
}

impl From<AuthorizeError> for ApiError {
    fn from(e: AuthorizeError) -> Self {
        ApiError::Authorize(e)
    }
}

impl From<RestError> for ApiError {
    fn from(e: RestError) -> Self {
        ApiError::Rest(e)
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        ApiError::Rest(e.into())
    }
}

/// Logs why a request failed, when there is more to say than the client was told.
fn log_cause(status: StatusCode, cause: &Option<String>) {
    if let Some(cause) = cause {
        if status.is_server_error() {
            tracing::error!(%status, %cause, "request failed");
        } else {
            tracing::info!(%status, %cause, "request refused");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::OAuth(e) => oauth::response(e),
            ApiError::Authorize(e) => oauth::authorize_response(e),
            ApiError::Xml(f, challenge) => xml::response(f, challenge),
            ApiError::Event(e, challenge) => events::response(e, challenge),
            ApiError::Rest(e) => rest::response(e),
        }
    }
}
