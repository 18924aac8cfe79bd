//! RFC 5849 §3.2: the answer of a refused request at the OAuth 1.0a endpoints: 400 for a
//! malformed request, 401 with `WWW-Authenticate: OAuth realm="..."` for a bad credential,
//! and a form-encoded body naming the problem (`oauth_problem`, `oauth_problem_advice`) as
//! the OAuth Problem Reporting extension writes it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use grantry_core::oauth1::{OAuth1Error, Problem};

use super::{log_cause, BodyProblem};

/// The status of a refused OAuth 1.0a request.
pub fn status(p: &Problem) -> StatusCode {
    match p {
        Problem::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        Problem::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
        p if p.is_bad_request() => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The challenge of a 401 (RFC 5849 §3.2).
pub fn challenge() -> HeaderValue {
    HeaderValue::from_static("OAuth realm=\"grantry\"")
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A refused request at `/oauth1/request_token` or `/oauth1/access_token`.
pub fn response(e: OAuth1Error) -> Response {
    let status = status(&e.problem);
    let cause = match &e.problem {
        Problem::Server(c) => Some(c.clone()),
        _ => None,
    };
    log_cause(status, &cause);
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("oauth_problem", e.problem.name());
    body.append_pair("oauth_problem_advice", &e.description);
    if let Some(base) = &e.base_string {
        body.append_pair("oauth_signature_base_string", base);
    }
    let mut resp = (status, body.finish()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FORM));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match &e.problem {
        Problem::Throttled(t) => {
            h.insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after_secs()));
        }
        _ if status == StatusCode::UNAUTHORIZED => {
            h.insert(header::WWW_AUTHENTICATE, challenge());
        }
        _ => {}
    }
    resp
}

/// A body the endpoints could not read.
pub fn body_refused(p: BodyProblem) -> Response {
    let mut resp = response(OAuth1Error::new(Problem::ParameterRejected, p.describe()));
    *resp.status_mut() = p.status();
    resp
}

/// The form-encoded answer of a successful endpoint call (§2.1, §2.3).
pub fn credentials(pairs: &[(&str, &str)]) -> Response {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    let mut resp = (StatusCode::OK, body.finish()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FORM));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::super::bearer::REALM;
    use super::*;

    #[test]
    fn the_realm_is_the_apis() {
        assert_eq!(
            challenge().to_str().unwrap(),
            format!("OAuth realm=\"{REALM}\"")
        );
    }
}
