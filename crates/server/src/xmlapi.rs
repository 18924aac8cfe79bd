//! `POST /XMLAPI`: the XML API (DESIGN.md §4). The envelope comes as the form field `xml`
//! (what the original clients send) or as a raw `text/xml` body.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use grantry_core::xmlapi;

use crate::error::{xml_response, ApiError};
use crate::extract::{content_type, form_pairs, principal};
use crate::AppState;

pub async fn call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let xml = if content_type(&headers).as_deref() == Some("application/x-www-form-urlencoded") {
        form_pairs(&body)
            .into_iter()
            .find(|(k, _)| k == "xml")
            .map(|(_, v)| v.into_bytes())
            .unwrap_or_default()
    } else {
        body.to_vec()
    };
    let req = xmlapi::parse(&xml)?;
    let p = principal(&state, &headers)
        .await
        .map_err(|e| ApiError::xml_bearer(&e))?;
    if let Some(g) = xmlapi::required_grant(&req.op) {
        p.require(g).map_err(|e| ApiError::xml_bearer(&e))?;
    }
    let out = xmlapi::execute(&*state.store, state.clock.now(), &p, &req).await?;
    Ok(xml_response(out))
}
