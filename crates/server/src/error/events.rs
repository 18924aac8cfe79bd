//! Event API failures: `{"code", "description"}`, with the RFC 6750 challenge
//! when a credential was refused.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::platform::events::{code, EventError, EventErrorKind};

use super::bearer::Refusal;
use super::{log_cause, BodyProblem, RouteProblem};

pub fn status(kind: EventErrorKind) -> StatusCode {
    match kind {
        EventErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        EventErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        EventErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        EventErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        EventErrorKind::Forbidden => StatusCode::FORBIDDEN,
        EventErrorKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        EventErrorKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
        EventErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub(super) fn response(e: EventError, refusal: Option<Refusal>) -> Response {
    let status = status(e.kind);
    log_cause(status, &e.cause);
    let body = json!({"code": e.code, "description": e.description});
    let mut resp = (status, Json(body)).into_response();
    if let Some(r) = refusal {
        r.apply(resp.headers_mut());
    }
    resp
}

/// A body the Event API could not read: 413 (code 1004), 408 (1006) or 400 (1000).
pub fn body_refused(p: BodyProblem) -> Response {
    let e = match p {
        BodyProblem::TooLarge(_) => EventError::too_large(),
        BodyProblem::Timeout => EventError::bad(code::BODY_TIMEOUT, p.describe()),
        BodyProblem::Unreadable => EventError::bad(code::INVALID_JSON, p.describe()),
    };
    let mut resp = response(e, None);
    *resp.status_mut() = p.status();
    resp
}

/// A path or method the Event API does not serve: 404 or 405, code 1007.
pub fn route_refused(p: RouteProblem) -> Response {
    let description = match p {
        RouteProblem::NotFound => {
            "no such Event API resource; POST events to /campaignapi/resources/v3/events"
        }
        RouteProblem::MethodNotAllowed => "send events with POST",
    };
    let mut resp = response(EventError::bad(code::NO_SUCH_RESOURCE, description), None);
    *resp.status_mut() = p.status();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_core::gate::{BearerError, BearerErrorCode};
    use grantry_core::platform::events::code;
    use grantry_core::Grant;

    #[test]
    fn refused_credentials_keep_their_rfc6750_status() {
        let e = |c| {
            EventError::from(&BearerError {
                code: c,
                description: "d".into(),
                scope: None,
                basic: false,
                oauth1: false,
                retry_after: None,
                cause: None,
            })
        };
        let none = e(None);
        assert_eq!(
            (none.code, status(none.kind)),
            (code::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
        );
        let malformed = e(Some(BearerErrorCode::InvalidRequest));
        assert_eq!(
            (malformed.code, status(malformed.kind)),
            (code::UNAUTHORIZED, StatusCode::BAD_REQUEST)
        );
        let server = e(Some(BearerErrorCode::ServerError));
        assert_eq!(
            (server.code, status(server.kind)),
            (code::SERVER_ERROR, StatusCode::INTERNAL_SERVER_ERROR)
        );
        let scope = EventError::from(&BearerError::insufficient_scope(Grant::EventsWrite));
        assert_eq!(
            (scope.code, status(scope.kind)),
            (code::FORBIDDEN, StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(EventError::too_large().kind),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(EventError::bad(code::INVALID_JSON, "x").kind),
            StatusCode::BAD_REQUEST
        );
    }
}
