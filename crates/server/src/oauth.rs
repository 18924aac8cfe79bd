//! The token endpoint family: `POST /oauth/token` (RFC 6749 §3.2), introspection
//! (RFC 7662), revocation (RFC 7009), metadata (RFC 8414) and the JWT signing keys.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use grantry_core::oauth::{self, introspect, jwt, metadata, revoke, OAuthError, TokenRequest};

use crate::error::ApiError;
use crate::extract::{Now, OAuthRequest};
use crate::respond::{no_store_json, token_response};
use crate::AppState;

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<AppState>,
    Now(now): Now,
    headers: HeaderMap,
    req: OAuthRequest,
) -> Result<Response, ApiError> {
    let token_req = TokenRequest::parse(&req.params, req.authorization.as_deref())?;
    let grant_type = token_req.grant.name();
    let attempt = state.attempt(req.source);
    let resp = oauth::exchange(&*state.store, now, &state.settings, attempt, token_req).await?;
    let outcome = if resp.reissued { "reissued" } else { "issued" };
    metrics::counter!("grantry_tokens_total", "grant_type" => grant_type, "outcome" => outcome)
        .increment(1);
    let form = wants_form(&headers);
    Ok(token_response(&resp, state.settings.issuer(), form))
}

/// Whether the client prefers a form-encoded token response over JSON.
fn wants_form(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    accept.contains("application/x-www-form-urlencoded") && !accept.contains("application/json")
}

/// `POST /oauth/introspect` (RFC 7662).
pub async fn introspect(
    State(state): State<AppState>,
    Now(now): Now,
    req: OAuthRequest,
) -> Result<Response, ApiError> {
    let q = token_query(&state, now, &req, false).await?;
    let v = introspect::introspect(&*state.store, now, &state.settings, &q).await?;
    Ok(no_store_json(v))
}

/// `POST /oauth/revoke` (RFC 7009): 200 for any token, known or not.
pub async fn revoke(
    State(state): State<AppState>,
    Now(now): Now,
    req: OAuthRequest,
) -> Result<Response, ApiError> {
    let q = token_query(&state, now, &req, true).await?;
    revoke::revoke(&*state.store, now, &q).await?;
    Ok(no_store_json(serde_json::json!({})))
}

async fn token_query(
    state: &AppState,
    now: grantry_core::Timestamp,
    req: &OAuthRequest,
    allow_public: bool,
) -> Result<introspect::TokenQuery, OAuthError> {
    let request = (&req.params, req.authorization.as_deref());
    let (store, settings, attempt) = (&*state.store, &state.settings, state.attempt(req.source));
    introspect::authenticate(store, now, settings, attempt, request, allow_public).await
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn metadata(State(state): State<AppState>) -> Response {
    Json(metadata::metadata(&state.settings)).into_response()
}

/// `GET /oauth/jwks`: the JWT signing keys, published before they sign and kept until the
/// last token they signed has expired.
pub async fn jwks(State(state): State<AppState>, Now(now): Now) -> Result<Response, ApiError> {
    let keys = state.store.signing_keys().await.map_err(OAuthError::from)?;
    let published = jwt::published(&keys, now, state.settings.tokens.access_ttl);
    let mut resp = Json(jwt::jwks(&published)).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
