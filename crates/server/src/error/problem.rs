//! The admin API's failures as RFC 9457 problem details (`application/problem+json`), with
//! the RFC 6750 challenge when a credential was refused (docs/architecture.md, the admin API).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use grantry_core::admin::AdminError;
use grantry_core::gate::{BearerError, BearerErrorCode};

use super::{bearer, log_cause, BodyProblem, RouteProblem};

/// RFC 9457 §3: the media type of a problem details body.
pub const MEDIA_TYPE: &str = "application/problem+json";

/// Where each problem type is described: its anchor on the admin API's reference page.
const TYPE_BASE: &str = "/admin/v1/docs#problem-";

/// An admin API failure.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// The problem type's short name (`not-found`); its `type` URI is the reference page's
    /// anchor for it.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub refusal: Option<Box<bearer::Refusal>>,
    /// Logged, never sent.
    pub cause: Option<String>,
}

/// A problem details body (RFC 9457 §3.1), as the OpenAPI document describes it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    #[schema(example = "/admin/v1/docs#problem-not-found")]
    pub kind: String,
    #[schema(example = "Not found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong this time, and what to do next.
    pub detail: String,
}

/// The problem types, each with its status and title: what the reference page lists.
pub const TYPES: [(&str, u16, &str); 14] = [
    ("invalid-request", 400, "The request could not be read"),
    ("unauthenticated", 401, "No valid credential"),
    ("forbidden", 403, "The credential does not carry the scope"),
    ("not-found", 404, "Not found"),
    ("method-not-allowed", 405, "Method not allowed"),
    ("conflict", 409, "Conflict"),
    ("stale", 412, "Changed since it was read"),
    ("too-large", 413, "The request body is too large"),
    ("unsupported-media-type", 415, "Send JSON"),
    ("invalid", 422, "The request is not valid"),
    ("precondition-required", 428, "If-Match is required"),
    ("too-many-attempts", 429, "Too many attempts"),
    ("server-error", 500, "Server error"),
    ("unavailable", 503, "The database is unavailable"),
];

impl Problem {
    /// A problem of type `kind` (one of [`TYPES`]).
    pub fn of(kind: &'static str, detail: impl Into<String>) -> Problem {
        let (status, title) = TYPES
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map_or((500, "Server error"), |(_, s, t)| (*s, *t));
        debug_assert!(
            TYPES.iter().any(|(k, _, _)| *k == kind),
            "{kind} is not a problem type"
        );
        Problem {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind,
            title,
            detail: detail.into(),
            refusal: None,
            cause: None,
        }
    }

    /// A failure of the server's own, logged with its cause.
    pub fn server(cause: impl Into<String>) -> Problem {
        Problem {
            cause: Some(cause.into()),
            ..Problem::of("server-error", "server error; try again")
        }
    }

    fn unavailable(cause: String) -> Problem {
        Problem {
            cause: Some(cause),
            ..Problem::of(
                "unavailable",
                "the server cannot reach its database just now; nothing was changed, try again shortly",
            )
        }
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(m) => Problem::of("not-found", m),
            AdminError::Conflict(m) => Problem::of("conflict", m),
            AdminError::Invalid(m) | AdminError::KeyReused(m) => Problem::of("invalid", m),
            AdminError::Stale(m) => Problem::of("stale", m),
            AdminError::Password(e) => Problem::server(e.to_string()),
            AdminError::Store(s) if s.is_unavailable() => Problem::unavailable(s.to_string()),
            AdminError::Store(s) => Problem::server(s.to_string()),
        }
    }
}

impl From<BearerError> for Problem {
    fn from(e: BearerError) -> Self {
        let kind = match e.code {
            None | Some(BearerErrorCode::InvalidToken) => "unauthenticated",
            Some(BearerErrorCode::InvalidRequest) => "invalid-request",
            Some(BearerErrorCode::InsufficientScope) => "forbidden",
            Some(BearerErrorCode::TooManyAttempts) => "too-many-attempts",
            Some(BearerErrorCode::TemporarilyUnavailable) => "unavailable",
            Some(BearerErrorCode::ServerError) => "server-error",
        };
        let mut p = Problem::of(kind, e.description.clone());
        p.status = bearer::status(&e);
        p.refusal = Some(Box::new(bearer::Refusal::of(&e)));
        p.cause = e.cause;
        p
    }
}

impl From<BodyProblem> for Problem {
    fn from(p: BodyProblem) -> Self {
        let kind = match p {
            BodyProblem::TooLarge(_) => "too-large",
            BodyProblem::Timeout | BodyProblem::Unreadable => "invalid-request",
        };
        Problem {
            status: p.status(),
            ..Problem::of(kind, p.describe())
        }
    }
}

impl From<RouteProblem> for Problem {
    fn from(p: RouteProblem) -> Self {
        match p {
            RouteProblem::NotFound => Problem::of(
                "not-found",
                "no such admin API resource; the reference is at /admin/v1/docs",
            ),
            RouteProblem::MethodNotAllowed => Problem::of(
                "method-not-allowed",
                "this admin API resource does not take this method; see the Allow header",
            ),
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Self {
        Problem::of(
            "invalid-request",
            format!("the path is not valid: {}", r.body_text()),
        )
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Self {
        Problem::of(
            "invalid-request",
            format!("the query string is not valid: {}", r.body_text()),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        log_cause(self.status, &self.cause);
        let body = ProblemBody {
            kind: format!("{TYPE_BASE}{}", self.kind),
            title: self.title.into(),
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut resp = (self.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(r) = self.refusal {
            (*r).apply(headers);
        }
        resp
    }
}
