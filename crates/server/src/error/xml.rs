//! XML API failures: a `Fault` envelope (docs/architecture.md, protected APIs), with the RFC 6750 challenge when a
//! credential was refused.

use axum::http::StatusCode;
use axum::response::Response;

use grantry_core::platform::xmlapi::{Fault, FaultKind};

use super::bearer::Refusal;
use super::{log_cause, BodyProblem, RouteProblem};
use crate::respond::xml_response;

/// Business faults are HTTP 200, as in the original product.
pub fn status(kind: FaultKind) -> StatusCode {
    match kind {
        FaultKind::Business => StatusCode::OK,
        FaultKind::BadRequest => StatusCode::BAD_REQUEST,
        FaultKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        FaultKind::Forbidden => StatusCode::FORBIDDEN,
        FaultKind::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        FaultKind::Server => StatusCode::INTERNAL_SERVER_ERROR,
        FaultKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub(super) fn response(f: Fault, refusal: Option<Refusal>) -> Response {
    let status = status(f.kind);
    log_cause(status, &f.cause);
    let mut resp = xml_response(f.render());
    *resp.status_mut() = status;
    match refusal {
        Some(r) => r.apply(resp.headers_mut()),
        None => {
            if let Some(secs) = f.retry_after {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.into());
            }
        }
    }
    resp
}

/// A Fault 51 (invalid request) with another status than 400.
fn invalid_request(status: StatusCode, what: &str) -> Response {
    let mut resp = response(Fault::invalid_xml(what), None);
    *resp.status_mut() = status;
    resp
}

/// A body the XML API could not read: Fault 51 with 413, 408 or 400.
pub fn body_refused(p: BodyProblem) -> Response {
    invalid_request(p.status(), &p.describe())
}

/// A path or method the XML API does not serve: Fault 51 with 404 or 405.
pub fn route_refused(p: RouteProblem) -> Response {
    let what = match p {
        RouteProblem::NotFound => "no such XML API path; POST the envelope to /XMLAPI",
        RouteProblem::MethodNotAllowed => "send the envelope with POST",
    };
    invalid_request(p.status(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_core::gate::{BearerError, BearerErrorCode};
    use grantry_core::platform::data::DataError;
    use grantry_core::{Grant, StoreError};

    fn bearer(code: Option<BearerErrorCode>) -> Fault {
        Fault::from_bearer(&BearerError {
            code,
            description: "why".into(),
            scope: None,
            basic: false,
            oauth1: false,
            retry_after: None,
            cause: None,
        })
    }

    #[test]
    fn refused_credentials_answer_with_rfc6750_statuses() {
        assert_eq!(status(bearer(None).kind), StatusCode::UNAUTHORIZED);
        let invalid = bearer(Some(BearerErrorCode::InvalidToken));
        assert_eq!(
            (invalid.errorid, status(invalid.kind)),
            (145, StatusCode::UNAUTHORIZED)
        );
        let malformed = bearer(Some(BearerErrorCode::InvalidRequest));
        assert_eq!(
            (malformed.errorid, status(malformed.kind)),
            (145, StatusCode::BAD_REQUEST)
        );
        let scope = Fault::from_bearer(&BearerError::insufficient_scope(Grant::ListsRead));
        assert_eq!(
            (scope.errorid, status(scope.kind)),
            (146, StatusCode::FORBIDDEN)
        );
        let server = bearer(Some(BearerErrorCode::ServerError));
        assert_eq!(
            (server.errorid, status(server.kind)),
            (50, StatusCode::INTERNAL_SERVER_ERROR)
        );
    }

    #[test]
    fn business_faults_are_200_and_bad_input_400() {
        for e in [
            DataError::NotFound("contact"),
            DataError::NotFound("database"),
            DataError::Conflict("the contact already exists".into()),
        ] {
            assert_eq!(status(Fault::from(e).kind), StatusCode::OK);
        }
        let invalid = Fault::from(DataError::Invalid {
            field: Some("email"),
            message: "bad".into(),
        });
        assert_eq!(
            (invalid.errorid, status(invalid.kind)),
            (126, StatusCode::BAD_REQUEST)
        );
        let store = Fault::from(DataError::Store(StoreError::Backend("x".into())));
        assert_eq!(status(store.kind), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            status(Fault::invalid_xml("x").kind),
            StatusCode::BAD_REQUEST
        );
    }
}
