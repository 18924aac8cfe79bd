//! Extractors for what every handler repeats: the request's time, read once; the token
//! endpoint family's form; and the authenticated caller of a protected API, with or without
//! the request's body.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::uri::Authority;
use axum::http::Extensions;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use grantry_core::gate::{self, BearerError, Principal};
use grantry_core::limits::Attempt;
use grantry_core::oauth::{OAuthError, Params};
use grantry_core::oauth1::request::{carries_signature, is_oauth_header};
use grantry_core::oauth1::{signature, SignedRequest};
use grantry_core::Timestamp;

use crate::error::{self, ApiError, BodyProblem, RestError};
use crate::limits;
use crate::AppState;

/// The request's time: read from the clock once, then the same for every extractor and the
/// handler (core decides with this one `now`).
#[derive(Clone, Copy, Debug)]
pub struct Now(pub Timestamp);

impl FromRequestParts<AppState> for Now {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(now) = parts.extensions.get::<Now>() {
            return Ok(*now);
        }
        let now = Now(state.clock.now());
        parts.extensions.insert(now);
        Ok(now)
    }
}

/// Where a request came from: the TCP peer's address, which the limits on guessing count
/// failures against (docs/architecture.md, limits). `None` when the router is driven without
/// a listener (tests).
#[derive(Clone, Copy, Debug)]
pub struct Source(pub Option<IpAddr>);

impl Source {
    pub fn of(extensions: &Extensions) -> Source {
        if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
            return Source(Some(*ip));
        }
        Source(
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        )
    }
}

/// The client's address as a trusted proxy reported it in `X-Forwarded-For`, set by the
/// serving loop for connections from `http.trusted_proxies` (docs/architecture.md, the
/// serving loop).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// The client behind a chain of proxies: the right-most `X-Forwarded-For` entry that is not
/// itself a trusted proxy (each proxy appends the address it saw, so entries to its left are
/// whatever the client claimed). `None` when the header is missing or an entry is not an
/// address, so the connection's own peer is used.
pub fn forwarded_client(headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let mut entries = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        entries.extend(value.split(',').map(str::trim));
    }
    let mut client = None;
    for entry in entries.iter().rev() {
        let ip: IpAddr = entry.parse().ok()?;
        client = Some(ip);
        if !trusted.iter().any(|net| net.contains(&ip)) {
            break;
        }
    }
    client
}

impl FromRequestParts<AppState> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Source::of(&parts.extensions))
    }
}

impl AppState {
    /// One request's attempt at a door that checks a secret.
    pub fn attempt(&self, source: Source) -> Attempt<'_> {
        Attempt::new(&*self.guard, source.0)
    }
}

/// The `Authorization` header as text. Several headers, or one that is not visible ASCII,
/// are malformed (RFC 6750 §3.1 `invalid_request`).
pub fn authorization(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(BearerError::invalid_request(
            "send one Authorization header",
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| BearerError::invalid_request("the Authorization header must be ASCII"))
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

/// Whether a media type (as [`content_type`] reads it) is JSON: `application/json`, or a
/// `+json` type (RFC 6839 §3.1, e.g. RFC 7396 merge patches).
pub fn is_json(media_type: Option<&str>) -> bool {
    media_type.is_some_and(|t| {
        t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
    })
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// A request to the token endpoint family (RFC 6749 §3.2): form-encoded, at most one
/// `Authorization` header, each parameter sent once.
pub struct OAuthRequest {
    pub params: Params,
    pub authorization: Option<String>,
    pub source: Source,
}

impl FromRequest<AppState> for OAuthRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let refuse = |e: OAuthError| ApiError::from(e).into_response();
        let form =
            content_type(req.headers()).as_deref() == Some("application/x-www-form-urlencoded");
        let authorization = authorization(req.headers()).map(|a| a.map(str::to_string));
        let source = Source::of(req.extensions());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|r| error::oauth::body_refused(BodyProblem::of(&r, limits::TOKEN_BODY)))?;
        if !form {
            return Err(refuse(OAuthError::invalid_request(
                "send the request as Content-Type: application/x-www-form-urlencoded",
            )));
        }
        let authorization =
            authorization.map_err(|e| refuse(OAuthError::invalid_request(e.description)))?;
        let params = Params::parse(form_pairs(&body)).map_err(refuse)?;
        Ok(OAuthRequest {
            params,
            authorization,
            source,
        })
    }
}

/// What a protected request presents to the gate: its head, and its body once read.
#[derive(Clone, Copy)]
pub struct Presented<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: Option<&'a [u8]>,
}

impl<'a> Presented<'a> {
    /// A request whose body is not read (or not yet).
    pub fn head(parts: &'a Parts) -> Self {
        Presented {
            method: &parts.method,
            uri: original_uri(parts),
            headers: &parts.headers,
            body: None,
        }
    }

    /// The body, when it is form-encoded: only then do its parameters count for an OAuth
    /// 1.0a signature (RFC 5849 §3.4.1.3.1).
    fn form_body(&self) -> Option<&'a [u8]> {
        let form =
            content_type(self.headers).as_deref() == Some("application/x-www-form-urlencoded");
        self.body.filter(|_| form)
    }
}

/// The URI the client sent, also inside a nested router (which strips its prefix from
/// [`Parts::uri`]).
pub fn original_uri(parts: &Parts) -> &Uri {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0)
}

/// The request as OAuth 1.0a signs it (RFC 5849 §3.4.1): the base string URI is this
/// server's scheme (from its public URL) with the host and port the client addressed (the
/// `Host` header) and the path; PLAINTEXT is allowed when the public URL is HTTPS or the
/// client is on loopback.
pub fn signed_request<'a>(
    state: &AppState,
    source: Source,
    req: &Presented<'a>,
    authorization: Option<&'a str>,
) -> SignedRequest<'a> {
    let public = &state.settings.public_url;
    let scheme = if public.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let authority = req
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .or_else(|| req.uri.authority().cloned())
        .or_else(|| {
            public
                .parse::<Uri>()
                .ok()
                .and_then(|u| u.authority().cloned())
        });
    let (host, port) = authority
        .as_ref()
        .map_or(("", None), |a| (a.host(), a.port_u16()));
    SignedRequest {
        method: req.method.as_str(),
        base_uri: signature::base_string_uri(scheme, host, port, req.uri.path()),
        query: req.uri.query().unwrap_or(""),
        authorization: authorization.filter(|a| is_oauth_header(a)),
        form_body: req.form_body(),
        confidential: scheme == "https" || source.0.is_some_and(|ip| ip.is_loopback()),
    }
}

/// Resolves the caller of a protected API at the request's time: a request signed with
/// OAuth 1.0a (the OAuth scheme, or protocol parameters in its query or form body) goes to
/// [`gate::authenticate_signed`], any other to [`gate::authenticate`].
pub async fn principal(
    state: &AppState,
    now: Timestamp,
    source: Source,
    req: Presented<'_>,
) -> Result<Principal, BearerError> {
    let auth = authorization(req.headers)?;
    let attempt = state.attempt(source);
    let signed = match auth {
        Some(a) => is_oauth_header(a),
        None => carries_signature(req.uri.query().unwrap_or(""), req.form_body()),
    };
    if signed {
        let signed = signed_request(state, source, &req, auth);
        return gate::authenticate_signed(&*state.store, now, &state.settings, attempt, &signed)
            .await;
    }
    gate::authenticate(&*state.store, now, &state.settings, attempt, auth).await
}

/// How a protected API answers a refused credential, and a body it could not read.
pub trait RefusalFormat {
    /// The largest body the API reads ([`crate::limits`]).
    const BODY_LIMIT: usize;
    fn refuse(e: BearerError) -> ApiError;
    fn body_refused(p: BodyProblem) -> Response;
}

/// The REST API's `meta` errors.
pub struct Rest;

impl RefusalFormat for Rest {
    const BODY_LIMIT: usize = limits::REST_BODY;

    fn refuse(e: BearerError) -> ApiError {
        RestError::from(e).into()
    }

    fn body_refused(p: BodyProblem) -> Response {
        RestError::from(p).into_response()
    }
}

/// The Event API's `{code, description}`.
pub struct Events;

impl RefusalFormat for Events {
    const BODY_LIMIT: usize = limits::EVENTS_BODY;

    fn refuse(e: BearerError) -> ApiError {
        ApiError::event_bearer(&e)
    }

    fn body_refused(p: BodyProblem) -> Response {
        error::events::body_refused(p)
    }
}

/// The authenticated caller of a protected API (docs/architecture.md, ways to authenticate), refused in the API's own
/// format `F`.
pub struct Caller<F>(pub Principal, pub PhantomData<F>);

impl<F: RefusalFormat> FromRequestParts<AppState> for Caller<F> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Now(now)) = Now::from_request_parts(parts, state).await;
        let source = Source::of(&parts.extensions);
        let p = principal(state, now, source, Presented::head(parts))
            .await
            .map_err(F::refuse)?;
        Ok(Caller(p, PhantomData))
    }
}

/// What a call with a body sent: the body, and its media type as [`content_type`] reads it.
pub struct Sent {
    pub body: Bytes,
    pub media_type: Option<String>,
}

/// The authenticated caller and the request's body. The body is read first, as for any
/// other request: a refused request then leaves its connection in a state the client can
/// reuse. A body that cannot be read (too large, too slow, broken off) is refused in the
/// API's format `F` before the credential is looked up.
pub struct CallerWith<F>(pub Principal, pub Sent, pub PhantomData<F>);

impl<F: RefusalFormat> FromRequest<AppState> for CallerWith<F> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Ok(Now(now)) = Now::from_request_parts(&mut parts, state).await;
        let source = Source::of(&parts.extensions);
        let media_type = content_type(&parts.headers);
        let (method, uri, headers) = (
            parts.method.clone(),
            original_uri(&parts).clone(),
            parts.headers.clone(),
        );
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|r| F::body_refused(BodyProblem::of(&r, F::BODY_LIMIT)))?;
        let presented = Presented {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: Some(&body),
        };
        let p = principal(state, now, source, presented)
            .await
            .map_err(|e| F::refuse(e).into_response())?;
        let read = Sent { body, media_type };
        Ok(CallerWith(p, read, PhantomData))
    }
}
