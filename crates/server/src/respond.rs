//! Successful answers, in each protocol's own shape: the token response (RFC 6749 §5.1),
//! JSON that must not be cached, the XML API's envelope, the REST API's `meta`/`data`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use grantry_core::oauth::TokenResponse;

/// When the `client_credentials` path for API keys was deprecated (2024-01-01), as an RFC 9745
/// structured date.
pub const DEPRECATED_SINCE: &str = "@1704067200";

/// RFC 6749 §5.1: token responses are never cached.
pub fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A successful token response (RFC 6749 §5.1): JSON, never cached.
///
/// A client that asks `Accept: application/x-www-form-urlencoded` (and not JSON) gets the
/// fields form-encoded, as the original platform's older clients expect.
pub fn token_response(t: &TokenResponse, issuer: &str, form: bool) -> Response {
    let mut resp = if form {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in t.fields() {
            match v {
                Value::String(s) => ser.append_pair(k, &s),
                other => ser.append_pair(k, &other.to_string()),
            };
        }
        let ct = HeaderValue::from_static("application/x-www-form-urlencoded");
        ([(header::CONTENT_TYPE, ct)], ser.finish()).into_response()
    } else {
        let body: serde_json::Map<String, Value> = t
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Json(Value::Object(body)).into_response()
    };
    no_store(&mut resp);
    if t.deprecated {
        // RFC 9745: the deprecated short-lived token path of API keys.
        let h = resp.headers_mut();
        h.insert("deprecation", HeaderValue::from_static(DEPRECATED_SINCE));
        if let Ok(link) = HeaderValue::from_str(&format!(
            "<{issuer}/docs/api-keys>; rel=\"deprecation\"; type=\"text/html\""
        )) {
            h.insert(header::LINK, link);
        }
    }
    resp
}

/// A JSON answer that must not be cached (token endpoint family).
pub fn no_store_json(v: Value) -> Response {
    let mut resp = Json(v).into_response();
    no_store(&mut resp);
    resp
}

/// An XML API answer.
pub fn xml_response(body: String) -> Response {
    let ct = HeaderValue::from_static("text/xml;charset=utf-8");
    ([(header::CONTENT_TYPE, ct)], body).into_response()
}

/// A REST success: `{"meta": {...}, "links": [], "data": ...}`.
pub fn rest_ok(status: StatusCode, data: Value, attributes: Value) -> Response {
    let body = json!({
        "meta": {"attributes": attributes, "generalErrors": [], "fieldErrors": {}},
        "links": [],
        "data": data,
    });
    (status, Json(body)).into_response()
}
