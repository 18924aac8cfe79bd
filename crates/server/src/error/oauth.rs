//! The token endpoint family's errors (RFC 6749 §5.2) and the authorization endpoint's
//! (RFC 6749 §4.1.2.1: rendered to the user, or redirected to the client).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::oauth::authorize::{self, AuthorizeError};
use grantry_core::oauth::{ErrorCode, OAuthError};

use super::{log_cause, BodyProblem, RouteProblem};
use crate::pages;
use crate::respond::no_store;

/// RFC 6749 §5.2: 400, except a refused client (401), `slow_down` under the `reject`
/// re-issue policy (429) and the server's own failures.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `{"error", "error_description"}`, never cached; a client refused after trying HTTP Basic
/// is challenged for it; `slow_down` says when to come back.
pub(super) fn response(e: OAuthError) -> Response {
    let status = status(e.code);
    log_cause(status, &e.cause);
    let body = json!({"error": e.code.as_str(), "error_description": e.description});
    let mut resp = (status, Json(body)).into_response();
    no_store(&mut resp);
    let h = resp.headers_mut();
    if e.basic_challenge && status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"grantry\", charset=\"UTF-8\""),
        );
    }
    if let Some(secs) = e.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// RFC 6749 §5.2 `invalid_request` with another status than 400.
fn invalid_request(status: StatusCode, description: String) -> Response {
    let mut resp = response(OAuthError::invalid_request(description));
    *resp.status_mut() = status;
    resp
}

/// A token endpoint family body that could not be read: `invalid_request` with 413, 408 or
/// 400.
pub fn body_refused(p: BodyProblem) -> Response {
    invalid_request(p.status(), p.describe())
}

/// A path or method under `/oauth` that nothing serves: `invalid_request` with 404 or 405.
pub fn route_refused(p: RouteProblem) -> Response {
    let description = match p {
        RouteProblem::NotFound => {
            "no such OAuth endpoint; the server metadata at \
             /.well-known/oauth-authorization-server lists them"
        }
        RouteProblem::MethodNotAllowed => {
            "this OAuth endpoint does not take this method; see the Allow header"
        }
    };
    invalid_request(p.status(), description.into())
}

/// A sign-in or consent form that could not be read, rendered to the user.
pub fn authorize_body_refused(p: BodyProblem) -> Response {
    pages::error(p.status(), &p.describe())
}

/// Rendered when the client or its redirect URI cannot be trusted; otherwise sent back to
/// the client on its redirect URI.
pub(super) fn authorize_response(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Render { description } => {
            pages::error(StatusCode::BAD_REQUEST, &description)
        }
        AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state,
            iss,
        } => pages::see_other(&authorize::error_redirect(
            &redirect_uri,
            error,
            &description,
            state.as_deref(),
            &iss,
        )),
        AuthorizeError::Server(cause) => {
            tracing::error!(%cause, "authorization request failed");
            pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not complete the request; try again.",
            )
        }
        AuthorizeError::Unavailable(cause) => {
            tracing::warn!(%cause, "authorization request: the database is unavailable");
            pages::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot reach its database just now. Nothing was changed; try again in a moment.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_rfc6749_section_5_2() {
        assert_eq!(status(ErrorCode::InvalidClient), StatusCode::UNAUTHORIZED);
        assert_eq!(status(ErrorCode::SlowDown), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            status(ErrorCode::ServerError),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        for c in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidGrant,
            ErrorCode::UnauthorizedClient,
            ErrorCode::UnsupportedGrantType,
            ErrorCode::InvalidScope,
        ] {
            assert_eq!(status(c), StatusCode::BAD_REQUEST, "{c:?}");
        }
    }
}
