//! Small request readers shared by the handlers.

use axum::http::{header, HeaderMap};

use grantry_core::authn::{self, BearerError, BearerErrorCode, Principal};

use crate::AppState;

/// The `Authorization` header as text. Several headers, or one that is not visible ASCII,
/// are malformed (RFC 6750 §3.1 `invalid_request`).
pub fn authorization(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    let malformed = |d: &str| BearerError {
        code: Some(BearerErrorCode::InvalidRequest),
        description: d.to_string(),
        scope: None,
        cause: None,
    };
    if all.next().is_some() {
        return Err(malformed("send one Authorization header"));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| malformed("the Authorization header must be ASCII"))
}

/// Resolves the caller of a protected API.
pub async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, BearerError> {
    let auth = authorization(headers)?;
    authn::authenticate(&*state.store, &*state.clock, &state.settings, auth).await
}

/// The media type of the request, lower-cased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
