//! `POST /XMLAPI`: the XML API (docs/architecture.md, protected APIs). The envelope comes as the form field `xml`
//! (what the original clients send) or as a raw `text/xml` body; it is parsed before the
//! credential is checked.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use grantry_core::gate::BearerError;
use grantry_core::platform::xmlapi;

use crate::error::{self, ApiError, BodyProblem, RouteProblem};
use crate::extract::{content_type, form_pairs, principal, Now, Presented, Source};
use crate::limits;
use crate::respond::xml_response;
use crate::AppState;

pub async fn call(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Response> {
    let body = body.map_err(|r| error::xml::body_refused(BodyProblem::of(&r, limits::XML_BODY)))?;
    let presented = Presented {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: Some(&body),
    };
    execute(&state, now, source, presented)
        .await
        .map_err(IntoResponse::into_response)
}

async fn execute(
    state: &AppState,
    now: grantry_core::Timestamp,
    source: Source,
    presented: Presented<'_>,
) -> Result<Response, ApiError> {
    let (headers, body) = (presented.headers, presented.body.unwrap_or_default());
    let xml = if content_type(headers).as_deref() == Some("application/x-www-form-urlencoded") {
        form_pairs(body)
            .into_iter()
            .find(|(k, _)| k == "xml")
            .map(|(_, v)| v.into_bytes())
            .unwrap_or_default()
    } else {
        body.to_vec()
    };
    let req = xmlapi::parse(&xml)?;
    let p = principal(state, now, source, presented)
        .await
        .map_err(|e| ApiError::xml_bearer(&e))?;
    if let Some(g) = xmlapi::required_grant(&req.op) {
        p.require(g).map_err(|e| ApiError::xml_bearer(&e))?;
    }
    let out = xmlapi::execute(&*state.store, now, &p, &req).await?;
    Ok(xml_response(out))
}

/// `/XMLAPI;jsessionid=...`: legacy clients name their `Login` session in the path. No
/// session is served yet, so every such id matches nothing and is answered as the original
/// product answers an unknown session: Fault 145 (docs/architecture.md, protected APIs).
/// Other `;` parameters name no XML API path. The body is read (up to the XML API's limit)
/// so the connection stays usable.
pub async fn with_path_parameters(uri: Uri, body: Result<Bytes, BytesRejection>) -> Response {
    if let Err(r) = body {
        return error::xml::body_refused(BodyProblem::of(&r, limits::XML_BODY));
    }
    let params = uri.path().split_once(';').map_or("", |(_, p)| p);
    let session = params.split(';').any(|p| {
        p.split('=')
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("jsessionid"))
    });
    if session {
        ApiError::xml_bearer(&BearerError::invalid_token(
            "the jsessionid in the path matches no session; send the request to /XMLAPI \
             with an Authorization header",
        ))
        .into_response()
    } else {
        error::xml::route_refused(RouteProblem::NotFound)
    }
}
