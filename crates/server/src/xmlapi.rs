//! `POST /XMLAPI`: the XML API (docs/architecture.md, protected APIs). The envelope comes as the form field `xml`
//! (what the original clients send) or as a raw `text/xml` body; it is parsed before the
//! credential is checked.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use grantry_core::platform::xmlapi;

use crate::error::ApiError;
use crate::extract::{content_type, form_pairs, principal, Now, Source};
use crate::respond::xml_response;
use crate::AppState;

pub async fn call(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
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
    let p = principal(&state, now, source, &headers)
        .await
        .map_err(|e| ApiError::xml_bearer(&e))?;
    if let Some(g) = xmlapi::required_grant(&req.op) {
        p.require(g).map_err(|e| ApiError::xml_bearer(&e))?;
    }
    let out = xmlapi::execute(&*state.store, now, &p, &req).await?;
    Ok(xml_response(out))
}
