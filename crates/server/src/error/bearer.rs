//! RFC 6750 §3: the status and `WWW-Authenticate` challenge of a refused protected request,
//! shared by the REST API, the XML API and the Event API.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

use grantry_core::gate::{BearerError, BearerErrorCode};

/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "grantry";

/// RFC 6750 §3.1: no or a bad credential is 401, a malformed request 400, a missing grant
/// 403; a storage failure is the server's.
pub fn status(e: &BearerError) -> StatusCode {
    match e.code {
        None | Some(BearerErrorCode::InvalidToken) => StatusCode::UNAUTHORIZED,
        Some(BearerErrorCode::InvalidRequest) => StatusCode::BAD_REQUEST,
        Some(BearerErrorCode::InsufficientScope) => StatusCode::FORBIDDEN,
        Some(BearerErrorCode::TooManyAttempts) => StatusCode::TOO_MANY_REQUESTS,
        Some(BearerErrorCode::ServerError) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(BearerErrorCode::TemporarilyUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The headers of a refused protected request, whatever API it came in on: the RFC 6750
/// challenge, or for a throttled attempt `Retry-After` (RFC 6585 §4) instead.
#[derive(Clone, Debug)]
pub struct Refusal {
    challenge: Option<String>,
    retry_after: Option<u64>,
}

impl Refusal {
    pub fn of(e: &BearerError) -> Refusal {
        match e.retry_after {
            Some(secs) => Refusal {
                challenge: None,
                retry_after: Some(secs),
            },
            None => Refusal {
                challenge: Some(challenge(e)),
                retry_after: None,
            },
        }
    }

    /// Adds these headers to a response's.
    pub fn apply(self, headers: &mut HeaderMap) {
        if let Some(v) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

/// A quoted-string parameter value limited to what RFC 6750 §3 allows in
/// `error_description` (printable ASCII without `"` and `\`).
fn param(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// The RFC 6750 §3 challenge for a refused protected request; when the request used HTTP
/// Basic and is answered 401, a Basic challenge follows it (RFC 7235 §4.1 allows several).
pub fn challenge(e: &BearerError) -> String {
    if e.oauth1 {
        // RFC 5849 §3.2: a signed request is challenged with its own scheme.
        return format!("OAuth realm=\"{REALM}\"");
    }
    let mut c = bearer_challenge(e);
    if e.basic && status(e) == StatusCode::UNAUTHORIZED {
        c.push_str(&format!(", Basic realm=\"{REALM}\", charset=\"UTF-8\""));
    }
    c
}

fn bearer_challenge(e: &BearerError) -> String {
    let mut c = format!("Bearer realm=\"{REALM}\"");
    if let Some(code) = e.code {
        c.push_str(&format!(
            ", error=\"{}\", error_description=\"{}\"",
            code.as_str(),
            param(&e.description)
        ));
    }
    if let Some(g) = e.scope {
        c.push_str(&format!(", scope=\"{}\"", g.name()));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_core::Grant;

    fn bearer(code: Option<BearerErrorCode>) -> BearerError {
        BearerError {
            code,
            description: "why \"not\"\n".into(),
            scope: None,
            basic: false,
            oauth1: false,
            retry_after: None,
            cause: None,
        }
    }

    #[test]
    fn statuses_follow_rfc6750() {
        assert_eq!(status(&bearer(None)), StatusCode::UNAUTHORIZED);
        let cases = [
            (BearerErrorCode::InvalidToken, StatusCode::UNAUTHORIZED),
            (BearerErrorCode::InvalidRequest, StatusCode::BAD_REQUEST),
            (BearerErrorCode::InsufficientScope, StatusCode::FORBIDDEN),
            (
                BearerErrorCode::ServerError,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (code, want) in cases {
            assert_eq!(status(&bearer(Some(code))), want, "{code:?}");
        }
    }

    #[test]
    fn challenges_carry_code_description_and_scope() {
        assert_eq!(challenge(&bearer(None)), "Bearer realm=\"grantry\"");
        assert_eq!(
            challenge(&bearer(Some(BearerErrorCode::InvalidToken))),
            "Bearer realm=\"grantry\", error=\"invalid_token\", error_description=\"why 'not'?\""
        );
        assert!(
            challenge(&BearerError::insufficient_scope(Grant::ListsRead))
                .ends_with(", scope=\"lists:read\"")
        );
    }
}
