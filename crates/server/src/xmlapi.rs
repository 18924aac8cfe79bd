//! `POST /XMLAPI`: the XML API (docs/architecture.md, protected APIs). The envelope comes as the form field `xml`
//! (what the original clients send) or as a raw `text/xml` body; it is parsed before the
//! credential is checked. A call authenticates with an `Authorization` header or names a
//! `Login` session: `;jsessionid=<id>` in the path, or the `JSESSIONID` cookie
//! (docs/architecture.md, XML API sessions).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use grantry_core::platform::xmlapi;

use crate::error::{self, ApiError, BodyProblem, RouteProblem};
use crate::extract::{authorization, content_type, form_pairs, principal, Now, Presented, Source};
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
    execute(&state, now, source, presented, None)
        .await
        .map_err(IntoResponse::into_response)
}

/// The session a request names: the path's `;jsessionid=` first, else the `JSESSIONID`
/// cookie when no `Authorization` header is sent.
fn named_session<'a>(path_session: Option<&'a str>, headers: &'a HeaderMap) -> Option<&'a str> {
    if path_session.is_some() {
        return path_session;
    }
    if headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("jsessionid"))
        .map(|(_, v)| v.trim().trim_matches('"'))
}

async fn execute(
    state: &AppState,
    now: grantry_core::Timestamp,
    source: Source,
    presented: Presented<'_>,
    path_session: Option<&str>,
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
    let store = &*state.store;
    if req.op == "Login" {
        let attempt = state.attempt(source);
        let out = xmlapi::login(store, now, &state.settings, attempt, &req.element)
            .await
            .map_err(ApiError::xml_session)?;
        return Ok(xml_response(out));
    }
    let p = match named_session(path_session, headers) {
        Some(id) => {
            let call = xmlapi::session_principal(store, now, &state.settings, id)
                .await
                .map_err(ApiError::xml_session)?;
            if req.op == "Logout" {
                let out = xmlapi::logout(store, now, &call)
                    .await
                    .map_err(ApiError::xml_session)?;
                return Ok(xml_response(out));
            }
            call.principal
        }
        None => {
            if req.op == "Logout" {
                authorization(headers).map_err(|e| ApiError::xml_bearer(&e))?;
                return Err(ApiError::xml_session(xmlapi::logout_without_session()));
            }
            principal(state, now, source, presented)
                .await
                .map_err(|e| ApiError::xml_bearer(&e))?
        }
    };
    if let Some(g) = xmlapi::required_grant(&req.op) {
        p.require(g).map_err(|e| ApiError::xml_bearer(&e))?;
    }
    let out = xmlapi::execute(store, now, &p, &req).await?;
    Ok(xml_response(out))
}

/// `/XMLAPI;jsessionid=...`: legacy clients name their `Login` session in the path
/// (docs/architecture.md, XML API sessions). Other `;` parameters name no XML API path.
/// The body is read (up to the XML API's limit) so the connection stays usable.
pub async fn with_path_parameters(
    state: AppState,
    now: grantry_core::Timestamp,
    source: Source,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return error::xml::body_refused(BodyProblem::of(&r, limits::XML_BODY)),
    };
    let params = uri.path().split_once(';').map_or("", |(_, p)| p);
    let session = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.eq_ignore_ascii_case("jsessionid").then_some(v)
    });
    let Some(session) = session else {
        return error::xml::route_refused(RouteProblem::NotFound);
    };
    if method != Method::POST {
        return error::xml::route_refused(RouteProblem::MethodNotAllowed);
    }
    let presented = Presented {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: Some(&body),
    };
    execute(&state, now, source, presented, Some(session))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
