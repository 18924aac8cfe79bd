//! `POST /oauth/token` (RFC 6749 §3.2).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use axum::response::IntoResponse;
use grantry_core::introspect;
use grantry_core::token::{self, ErrorCode, OAuthError, TokenRequest};

use crate::error::{no_store_json, token_response, ApiError};
use crate::extract::{authorization, content_type, form_pairs};
use crate::AppState;

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if content_type(&headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "send the request as Content-Type: application/x-www-form-urlencoded",
        )
        .into());
    }
    let auth = authorization(&headers)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidRequest, e.description))?;
    let req = TokenRequest::parse(&form_pairs(&body), auth)?;
    let resp = token::exchange(&*state.store, &*state.clock, &state.settings, req).await?;
    Ok(token_response(
        &resp,
        &state.settings.public_url,
        wants_form(&headers),
    ))
}

/// Whether the client prefers a form-encoded token response over JSON.
fn wants_form(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    accept.contains("application/x-www-form-urlencoded") && !accept.contains("application/json")
}

/// `POST /oauth/introspect` (RFC 7662).
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let q = token_query(&state, &headers, &body, false).await?;
    let v = introspect::introspect(&*state.store, state.clock.now(), &state.settings, &q).await?;
    Ok(no_store_json(v))
}

/// `POST /oauth/revoke` (RFC 7009): 200 for any token, known or not.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let q = token_query(&state, &headers, &body, true).await?;
    introspect::revoke(&*state.store, state.clock.now(), &q).await?;
    Ok(no_store_json(serde_json::json!({})))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn metadata(State(state): State<AppState>) -> Response {
    axum::Json(introspect::metadata(&state.settings)).into_response()
}

async fn token_query(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    allow_public: bool,
) -> Result<introspect::TokenQuery, ApiError> {
    if content_type(headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "send the request as Content-Type: application/x-www-form-urlencoded",
        )
        .into());
    }
    let auth = authorization(headers)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidRequest, e.description))?;
    Ok(introspect::authenticate(
        &*state.store,
        state.clock.now(),
        &form_pairs(body),
        auth,
        allow_public,
    )
    .await?)
}

/// `GET /oauth/jwks`: the JWT signing keys, published before they sign and kept until the
/// last token they signed has expired.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let keys = state.store.signing_keys().await.map_err(OAuthError::from)?;
    let published =
        grantry_core::jwt::published(&keys, state.clock.now(), state.settings.tokens.access_ttl);
    let mut resp = axum::Json(grantry_core::jwt::jwks(&published)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
