//! The one place that turns outcomes into HTTP: status codes, `WWW-Authenticate`,
//! `Cache-Control`, and each protocol's error body, one file per family: the token endpoint
//! family and the authorization endpoint (`oauth`), RFC 6750 (`bearer`), the XML API's
//! `Fault` (`xml`), the REST API's `meta` (`rest`), the Event API's `{code, description}`
//! (`events`), the admin API's RFC 9457 problem details (`problem`). Internal causes are
//! logged here and never sent.

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use grantry_core::gate::BearerError;
use grantry_core::oauth::authorize::AuthorizeError;
use grantry_core::oauth::OAuthError;
use grantry_core::platform::data::DataError;
use grantry_core::platform::events::EventError;
use grantry_core::platform::xmlapi::Fault;

pub mod bearer;
pub mod console;
pub mod events;
pub mod oauth;
pub mod oauth1;
pub mod problem;
pub mod rest;
pub mod xml;

pub use problem::Problem;
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
    /// OAuth 1.0a endpoints: RFC 5849 §3.2.
    OAuth1(grantry_core::oauth1::OAuth1Error),
    /// The admin API: RFC 9457 problem details.
    Problem(Problem),
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

    /// A refused `Login` or session (docs/architecture.md, XML API sessions): an
    /// unauthenticated Fault carries the RFC 6750 `invalid_token` challenge every 401 of the
    /// XML API carries.
    pub fn xml_session(f: Fault) -> Self {
        let refusal = (f.kind == grantry_core::platform::xmlapi::FaultKind::Unauthenticated)
            .then(|| bearer::Refusal::of(&BearerError::invalid_token(f.message.clone())));
        ApiError::Xml(f, refusal)
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

impl From<grantry_core::oauth1::OAuth1Error> for ApiError {
    fn from(e: grantry_core::oauth1::OAuth1Error) -> Self {
        ApiError::OAuth1(e)
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::Problem(p)
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

/// Why a request's body could not be read, as every protocol answers it in its own format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyProblem {
    /// Larger than the route's limit ([`crate::limits`]): 413.
    TooLarge(usize),
    /// Not complete within `http.body_read_timeout`: 408.
    Timeout,
    /// Broken off or malformed framing: 400.
    Unreadable,
}

impl BodyProblem {
    /// Classifies axum's rejection of a body read; `limit` is the route's limit.
    pub fn of(r: &BytesRejection, limit: usize) -> BodyProblem {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return BodyProblem::TooLarge(limit);
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(r);
        while let Some(e) = cause {
            if e.is::<crate::limits::BodyTimeout>() {
                return BodyProblem::Timeout;
            }
            cause = e.source();
        }
        BodyProblem::Unreadable
    }

    pub fn status(self) -> StatusCode {
        match self {
            BodyProblem::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyProblem::Timeout => StatusCode::REQUEST_TIMEOUT,
            BodyProblem::Unreadable => StatusCode::BAD_REQUEST,
        }
    }

    /// What the client is told.
    pub fn describe(self) -> String {
        match self {
            BodyProblem::TooLarge(limit) => format!(
                "the request body is larger than this endpoint accepts ({} KiB); send less",
                limit / 1024
            ),
            BodyProblem::Timeout => {
                "the request body did not arrive in time; send it again without pausing".into()
            }
            BodyProblem::Unreadable => {
                "the request body could not be read; check its Content-Length or chunked encoding"
                    .into()
            }
        }
    }
}

/// A request no route or method answers, in its protocol's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteProblem {
    /// No such path: 404.
    NotFound,
    /// The path exists but not for this method: 405 (axum adds `Allow`).
    MethodNotAllowed,
}

impl RouteProblem {
    pub fn status(self) -> StatusCode {
        match self {
            RouteProblem::NotFound => StatusCode::NOT_FOUND,
            RouteProblem::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// Every 503 says when to come back (RFC 9110 §10.2.3): the database is unavailable for now
/// and the request changed nothing. A response that set its own `Retry-After` keeps it.
pub async fn retry_after_on_503(mut resp: Response) -> Response {
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .entry(axum::http::header::RETRY_AFTER)
            .or_insert_with(|| grantry_core::store::RETRY_AFTER_SECS.into());
    }
    resp
}

/// Logs why a request failed, when there is more to say than the client was told.
fn log_cause(status: StatusCode, cause: &Option<String>) {
    if let Some(cause) = cause {
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%status, %cause, "request refused: the database is unavailable");
        } else if status.is_server_error() {
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
            ApiError::OAuth1(e) => oauth1::response(e),
            ApiError::Problem(p) => p.into_response(),
        }
    }
}
