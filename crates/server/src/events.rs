//! `POST /campaignapi/resources/v3/events`: the Event API (seed 002).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::events::{self, code, EventError};
use grantry_core::Grant;

use crate::error::ApiError;
use crate::extract::{content_type, principal};
use crate::AppState;

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &headers)
        .await
        .map_err(|e| ApiError::event_bearer(&e))?;
    p.require(Grant::EventsWrite)
        .map_err(|e| ApiError::event_bearer(&e))?;
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => EventError::too_large(),
        _ => EventError::new(
            400,
            code::INVALID_JSON,
            "the request body could not be read",
        ),
    })?;
    if content_type(&headers).is_some_and(|ct| ct != "application/json") {
        return Err(EventError::new(
            415,
            code::UNSUPPORTED_MEDIA_TYPE,
            "send the event as Content-Type: application/json",
        )
        .into());
    }
    let id = events::submit(&*state.store, state.clock.now(), &p, &body).await?;
    Ok((StatusCode::OK, Json(json!({"transaction-id": id}))).into_response())
}
