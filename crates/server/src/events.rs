//! `POST /campaignapi/resources/v3/events`: the Event API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use grantry_core::platform::events::{self, EventError};
use grantry_core::Grant;

use crate::error::ApiError;
use crate::extract::{CallerWith, Events, Now};
use crate::AppState;

pub async fn submit(
    State(state): State<AppState>,
    Now(now): Now,
    CallerWith(p, sent, _): CallerWith<Events>,
) -> Result<Response, ApiError> {
    p.require(Grant::EventsWrite)
        .map_err(|e| ApiError::event_bearer(&e))?;
    if sent.media_type.is_some_and(|ct| ct != "application/json") {
        return Err(EventError::unsupported_media_type().into());
    }
    let id = events::submit(&*state.store, now, &p, &sent.body).await?;
    Ok((StatusCode::OK, Json(json!({"transaction-id": id}))).into_response())
}
