//! `POST /oauth/token` (RFC 6749 §3.2).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use grantry_core::token::{self, ErrorCode, OAuthError, TokenRequest};

use crate::error::{token_response, ApiError};
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
    Ok(token_response(&resp, &state.settings.public_url))
}
