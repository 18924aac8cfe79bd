//! The one place that turns outcomes into HTTP: status codes, `WWW-Authenticate`,
//! `Cache-Control`, and each protocol's error body (RFC 6749 JSON, RFC 6750 challenge, XML
//! `Fault`, REST `meta`). Internal causes are logged here and never sent.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::authn::BearerError;
use grantry_core::authorize::{self, AuthorizeError};
use grantry_core::events::EventError;
use grantry_core::platform::DataError;
use grantry_core::token::{ErrorCode, OAuthError, TokenResponse};
use grantry_core::xmlapi::Fault;

/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "grantry";

/// A failed request, in the format of the protocol it came in on.
#[derive(Debug)]
pub enum ApiError {
    /// Token endpoint: RFC 6749 §5.2.
    OAuth(OAuthError),
    /// XML API: a `Fault` envelope, with the RFC 6750 challenge when authentication failed.
    Xml(Fault, Option<String>),
    /// REST API: `meta.generalErrors` / `meta.fieldErrors`.
    Rest(RestError),
    /// Authorization endpoint: rendered to the user, or redirected to the client
    /// (RFC 6749 §4.1.2.1).
    Authorize(AuthorizeError),
    /// Event API: `{"code", "description"}`, with the RFC 6750 challenge when authentication
    /// failed.
    Event(EventError, Option<String>),
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

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

impl From<RestError> for ApiError {
    fn from(e: RestError) -> Self {
        ApiError::Rest(e)
    }
}

/// A REST API failure.
#[derive(Debug)]
pub struct RestError {
    pub status: StatusCode,
    pub general: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub challenge: Option<String>,
    pub cause: Option<String>,
}

impl RestError {
    pub fn general(status: StatusCode, msg: impl Into<String>) -> Self {
        RestError {
            status,
            general: vec![msg.into()],
            fields: BTreeMap::new(),
            challenge: None,
            cause: None,
        }
    }

    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        RestError {
            status: StatusCode::BAD_REQUEST,
            general: vec![],
            fields: BTreeMap::from([(field.to_string(), msg.into())]),
            challenge: None,
            cause: None,
        }
    }
}

impl From<BearerError> for RestError {
    fn from(e: BearerError) -> Self {
        RestError {
            status: status(e.status()),
            general: vec![e.description.clone()],
            fields: BTreeMap::new(),
            challenge: Some(bearer_challenge(&e)),
            cause: e.cause,
        }
    }
}

impl From<DataError> for RestError {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Scope(b) => b.into(),
            DataError::NotFound(what) => {
                RestError::general(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            DataError::Conflict(m) => RestError::general(StatusCode::CONFLICT, m),
            DataError::Invalid {
                field: Some(f),
                message,
            } => RestError::field(f, message),
            DataError::Invalid {
                field: None,
                message,
            } => RestError::general(StatusCode::BAD_REQUEST, message),
            DataError::Store(s) => RestError {
                cause: Some(s.to_string()),
                ..RestError::general(StatusCode::INTERNAL_SERVER_ERROR, "server error; try again")
            },
        }
    }
}

impl ApiError {
    /// An Event API authentication or grant failure, with the RFC 6750 challenge.
    pub fn event_bearer(e: &BearerError) -> Self {
        ApiError::Event(EventError::from(e), Some(bearer_challenge(e)))
    }

    /// An XML API authentication or grant failure: a Fault plus the RFC 6750 challenge.
    pub fn xml_bearer(e: &BearerError) -> Self {
        ApiError::Xml(Fault::from_bearer(e), Some(bearer_challenge(e)))
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        ApiError::Rest(e.into())
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

/// The RFC 6750 §3 challenge for a refused protected request.
pub fn bearer_challenge(e: &BearerError) -> String {
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

fn log_cause(status: StatusCode, cause: &Option<String>) {
    if let Some(cause) = cause {
        if status.is_server_error() {
            tracing::error!(%status, %cause, "request failed");
        } else {
            tracing::info!(%status, %cause, "request refused");
        }
    }
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn oauth_status(e: &OAuthError) -> StatusCode {
    match e.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::OAuth(e) => {
                let status = oauth_status(&e);
                log_cause(status, &e.cause);
                let mut resp = (
                    status,
                    Json(json!({"error": e.code.as_str(), "error_description": e.description})),
                )
                    .into_response();
                no_store(&mut resp);
                if e.basic_challenge && status == StatusCode::UNAUTHORIZED {
                    resp.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"grantry\", charset=\"UTF-8\""),
                    );
                }
                if let Some(secs) = e.retry_after {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                resp
            }
            ApiError::Xml(f, challenge) => {
                let status = status(f.status);
                log_cause(status, &f.cause);
                let mut resp = xml_response(f.render());
                *resp.status_mut() = status;
                if let Some(ch) = &challenge {
                    if let Ok(v) = HeaderValue::from_str(ch) {
                        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                }
                resp
            }
            ApiError::Authorize(AuthorizeError::Render { description }) => {
                use askama::Template;
                let html = ErrorPage {
                    message: &description,
                }
                .render();
                crate::authorize::page(StatusCode::BAD_REQUEST, html)
            }
            ApiError::Authorize(AuthorizeError::Redirect {
                redirect_uri,
                error,
                description,
                state,
            }) => crate::authorize::see_other(&authorize::error_redirect(
                &redirect_uri,
                error,
                &description,
                state.as_deref(),
            )),
            ApiError::Authorize(AuthorizeError::Server(cause)) => {
                use askama::Template;
                tracing::error!(%cause, "authorization request failed");
                let html = ErrorPage {
                    message: "The server could not complete the request; try again.",
                }
                .render();
                crate::authorize::page(StatusCode::INTERNAL_SERVER_ERROR, html)
            }
            ApiError::Event(e, challenge) => {
                let status = status(e.status);
                log_cause(status, &e.cause);
                let mut resp = (
                    status,
                    Json(json!({"code": e.code, "description": e.description})),
                )
                    .into_response();
                if let Some(ch) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, ch);
                }
                resp
            }
            ApiError::Rest(e) => {
                log_cause(e.status, &e.cause);
                let body = json!({
                    "meta": {"attributes": {}, "generalErrors": e.general, "fieldErrors": e.fields},
                    "links": [],
                    "data": null,
                });
                let mut resp = (e.status, Json(body)).into_response();
                if let Some(ch) = e.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, ch);
                }
                resp
            }
        }
    }
}

/// A successful token response (RFC 6749 §5.1): JSON, never cached.
///
/// A client that asks `Accept: application/x-www-form-urlencoded` (and not JSON) gets the
/// fields form-encoded, as the original platform's older clients expect.
pub fn token_response(t: &TokenResponse, public_url: &str, form: bool) -> Response {
    let mut resp = if form {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in t.fields() {
            match v {
                serde_json::Value::String(s) => ser.append_pair(k, &s),
                other => ser.append_pair(k, &other.to_string()),
            };
        }
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )],
            ser.finish(),
        )
            .into_response()
    } else {
        let body: serde_json::Map<String, serde_json::Value> = t
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Json(serde_json::Value::Object(body)).into_response()
    };
    no_store(&mut resp);
    if t.deprecated {
        // RFC 9745: the deprecated short-lived token path of API keys (seed 002).
        let h = resp.headers_mut();
        h.insert("deprecation", HeaderValue::from_static(DEPRECATED_SINCE));
        if let Ok(link) = HeaderValue::from_str(&format!(
            "<{}/docs/api-keys>; rel=\"deprecation\"; type=\"text/html\"",
            public_url.trim_end_matches('/')
        )) {
            h.insert(header::LINK, link);
        }
    }
    resp
}

/// When the `client_credentials` path for API keys was deprecated (2024-01-01), as an RFC 9745
/// structured date.
pub const DEPRECATED_SINCE: &str = "@1704067200";

/// A JSON answer that must not be cached (token endpoint family).
pub fn no_store_json(v: serde_json::Value) -> Response {
    let mut resp = Json(v).into_response();
    no_store(&mut resp);
    resp
}

/// An XML API answer.
pub fn xml_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml;charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// A REST success: `{"meta": {...}, "links": [], "data": ...}`.
pub fn rest_ok(
    status: StatusCode,
    data: serde_json::Value,
    attributes: serde_json::Value,
) -> Response {
    let body = json!({
        "meta": {"attributes": attributes, "generalErrors": [], "fieldErrors": {}},
        "links": [],
        "data": data,
    });
    (status, Json(body)).into_response()
}
