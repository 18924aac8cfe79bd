//! `GET/POST /oauth/authorize`: the web-server flow's login and consent pages (RFC 6749
//! §4.1, seed 003). The original query string travels through both forms and is validated
//! again on every step.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use grantry_core::authorize::{self, AuthorizeRequest};
use grantry_core::model::User;
use grantry_core::session;

use crate::error::ApiError;
use crate::extract::form_pairs;
use crate::AppState;

/// The cookie that carries a signed-in browser session.
pub const SESSION_COOKIE: &str = "grantry_session";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    app_name: &'a str,
    query: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    app_name: &'a str,
    app_description: &'a str,
    username: &'a str,
    grants: Vec<String>,
    query: &'a str,
    csrf: String,
}

/// An HTML page that must not be cached or framed.
pub fn page(status: StatusCode, html: Result<String, askama::Error>) -> Response {
    let Ok(html) = html else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response();
    };
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect").into_response(),
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(User, String)>, ApiError> {
    let Some(sid) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let user = session::current_user(&*state.store, state.clock.now(), sid)
        .await
        .map_err(|e| ApiError::Authorize(authorize::AuthorizeError::Server(e.to_string())))?;
    Ok(user.map(|u| (u, sid.to_string())))
}

fn login_page(req: &AuthorizeRequest, query: &str, error: Option<&str>) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let p = LoginPage {
        app_name: &req.app.name,
        query,
        error,
    };
    page(status, p.render())
}

/// The login page, or the consent page for a signed-in user of the application's org.
async fn next_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    query: &str,
) -> Result<Response, ApiError> {
    match signed_in(state, headers).await? {
        Some((user, sid)) if authorize::may_consent(req, &user) => {
            let p = ConsentPage {
                app_name: &req.app.name,
                app_description: &req.app.description,
                username: &user.username,
                grants: req
                    .scopes
                    .iter()
                    .map(|g| g.describe().to_string())
                    .collect(),
                query,
                csrf: session::csrf_token(&sid, query),
            };
            Ok(page(StatusCode::OK, p.render()))
        }
        _ => Ok(login_page(req, query, None)),
    }
}

/// `GET /oauth/authorize`.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = q.unwrap_or_default();
    let req = authorize::validate(&*state.store, &form_pairs(query.as_bytes())).await?;
    next_page(&state, &headers, &req, &query).await
}

fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// `POST /oauth/authorize/login`: `username`, `password` and the original `query`.
pub async fn login(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let form = form_pairs(&body);
    let query = field(&form, "query");
    let req = authorize::validate(&*state.store, &form_pairs(query.as_bytes())).await?;
    let password = SecretString::from(field(&form, "password"));
    let signed = session::login(
        &*state.store,
        state.clock.now(),
        &state.settings,
        req.app.org_id,
        &field(&form, "username"),
        &password,
    )
    .await
    .map_err(|e| ApiError::Authorize(authorize::AuthorizeError::Server(e.to_string())))?;
    let Some((_, sid)) = signed else {
        return Ok(login_page(
            &req,
            &query,
            Some("Wrong username or password."),
        ));
    };
    let secure = if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        sid.expose_secret(),
        session::SESSION_TTL.as_secs()
    );
    let mut resp = see_other(&format!("/oauth/authorize?{query}"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /oauth/authorize`: the consent decision (`decision=allow|deny`), with `csrf` and
/// the original `query`.
pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = form_pairs(&body);
    let query = field(&form, "query");
    let req = authorize::validate(&*state.store, &form_pairs(query.as_bytes())).await?;
    let Some((user, sid)) = signed_in(&state, &headers).await? else {
        return Ok(login_page(
            &req,
            &query,
            Some("Your session ended; sign in again."),
        ));
    };
    if !authorize::may_consent(&req, &user) {
        return Ok(login_page(
            &req,
            &query,
            Some("Sign in as a user of the application's organization."),
        ));
    }
    if !session::csrf_matches(&sid, &query, &field(&form, "csrf")) {
        return Err(ApiError::Authorize(authorize::AuthorizeError::Render {
            description: "the form is out of date; go back to the application and start again"
                .into(),
        }));
    }
    let now = state.clock.now();
    let location = match field(&form, "decision").as_str() {
        "allow" => authorize::approve(&*state.store, now, &state.settings, &req, &user).await?,
        "deny" => authorize::deny(&*state.store, now, &req, &user).await?,
        _ => {
            return Err(ApiError::Authorize(authorize::AuthorizeError::Render {
                description: "decision must be allow or deny".into(),
            }))
        }
    };
    Ok(see_other(&location))
}
