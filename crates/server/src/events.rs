//! `POST /campaignapi/resources/v3/events`: the Event API.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::platform::events::{self, code, EventError};
use grantry_core::Grant;

use crate::error::ApiError;
use crate::extract::{content_type, CallerWith, Events, Now};
use crate::AppState;

pub async fn submit(
    State(state): State<AppState>,
    Now(now): Now,
    headers: HeaderMap,
    CallerWith(p, body, _): CallerWith<Events, Result<Bytes, BytesRejection>>,
) -> Result<Response, ApiError> {
    p.require(Grant::EventsWrite)
        .map_err(|e| ApiError::event_bearer(&e))?;
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => EventError::too_large(),
        _ => EventError::bad(code::INVALID_JSON, "the request body could not be read"),
    })?;
    if content_type(&headers).is_some_and(|ct| ct != "application/json") {
        return Err(EventError::unsupported_media_type().into());
    }
    let id = events::submit(&*state.store, now, &p, &body).await?;
    Ok((StatusCode::OK, Json(json!({"transaction-id": id}))).into_response())
}
