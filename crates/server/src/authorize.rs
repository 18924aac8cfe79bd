//! `GET/POST /oauth/authorize`: the web-server flow's sign-in and consent pages (RFC 6749
//! §4.1). The original query string travels through both forms and is validated
//! again on every step.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use secrecy::{ExposeSecret, SecretString};

use grantry_core::model::User;
use grantry_core::oauth::authorize::{self, AuthorizeError, AuthorizeRequest};
use grantry_core::sessions;
use grantry_core::Timestamp;

use crate::error::ApiError;
use crate::extract::{form_pairs, Now};
use crate::pages::{self, ConsentPage, LoginPage};
use crate::AppState;

/// The cookie that carries a signed-in browser session.
pub const SESSION_COOKIE: &str = "grantry_session";

fn server_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Authorize(AuthorizeError::Server(e.to_string()))
}

fn render(description: &str) -> ApiError {
    ApiError::Authorize(AuthorizeError::Render {
        description: description.into(),
    })
}

/// The signed-in user of the session cookie, and the session id.
async fn signed_in(
    state: &AppState,
    now: Timestamp,
    jar: &CookieJar,
) -> Result<Option<(User, String)>, ApiError> {
    let Some(sid) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    let user = sessions::current_user(&*state.store, now, &sid)
        .await
        .map_err(server_error)?;
    Ok(user.map(|u| (u, sid)))
}

/// The authorization request carried in `query`, checked again.
async fn validate(state: &AppState, query: &str) -> Result<AuthorizeRequest, AuthorizeError> {
    let pairs = form_pairs(query.as_bytes());
    authorize::validate(&*state.store, state.settings.issuer(), &pairs).await
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
    pages::page(status, &p)
}

/// The sign-in page, or the consent page for a signed-in user of the application's org.
async fn next_page(
    state: &AppState,
    now: Timestamp,
    jar: &CookieJar,
    req: &AuthorizeRequest,
    query: &str,
) -> Result<Response, ApiError> {
    match signed_in(state, now, jar).await? {
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
                csrf: sessions::csrf_token(&sid, query),
            };
            Ok(pages::page(StatusCode::OK, &p))
        }
        _ => Ok(login_page(req, query, None)),
    }
}

/// `GET /oauth/authorize`.
pub async fn start(
    State(state): State<AppState>,
    Now(now): Now,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let query = q.unwrap_or_default();
    let req = validate(&state, &query).await?;
    next_page(&state, now, &jar, &req, &query).await
}

fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The session cookie: only over HTTPS when the public URL is, never readable by scripts,
/// never sent cross-site.
fn session_cookie(state: &AppState, sid: &SecretString) -> Cookie<'static> {
    let max_age = sessions::SESSION_TTL.as_secs() as i64;
    Cookie::build((SESSION_COOKIE, sid.expose_secret().to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .secure(state.settings.public_url.starts_with("https://"))
        .build()
}

/// A sign-in or consent form that could not be read, rendered to the user.
fn form_refused(r: &BytesRejection) -> Response {
    crate::error::oauth::authorize_body_refused(crate::error::BodyProblem::of(
        r,
        crate::limits::AUTHORIZE_BODY,
    ))
}

/// `POST /oauth/authorize/login`: `username`, `password` and the original `query`.
pub async fn login(
    State(state): State<AppState>,
    Now(now): Now,
    jar: CookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = match body {
        Ok(b) => b,
        Err(r) => return Ok(form_refused(&r)),
    };
    let form = form_pairs(&body);
    let query = field(&form, "query");
    let req = validate(&state, &query).await?;
    let password = SecretString::from(field(&form, "password"));
    let username = field(&form, "username");
    let org = req.app.org_id;
    let signed = sessions::login(
        &*state.store,
        now,
        &state.settings,
        org,
        &username,
        &password,
    )
    .await
    .map_err(server_error)?;
    let Some((_, sid)) = signed else {
        return Ok(login_page(
            &req,
            &query,
            Some("Wrong username or password."),
        ));
    };
    let jar = jar.add(session_cookie(&state, &sid));
    Ok((jar, pages::see_other(&format!("/oauth/authorize?{query}"))).into_response())
}

/// `POST /oauth/authorize`: the consent decision (`decision=allow|deny`), with `csrf` and
/// the original `query`.
pub async fn decide(
    State(state): State<AppState>,
    Now(now): Now,
    jar: CookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = match body {
        Ok(b) => b,
        Err(r) => return Ok(form_refused(&r)),
    };
    let form = form_pairs(&body);
    let query = field(&form, "query");
    let req = validate(&state, &query).await?;
    let Some((user, sid)) = signed_in(&state, now, &jar).await? else {
        return Ok(login_page(
            &req,
            &query,
            Some("Your session ended; sign in again."),
        ));
    };
    if !authorize::may_consent(&req, &user) {
        let why = "Sign in as a user of the application's organization.";
        return Ok(login_page(&req, &query, Some(why)));
    }
    if !sessions::csrf_matches(&sid, &query, &field(&form, "csrf")) {
        return Err(render(
            "the form is out of date; go back to the application and start again",
        ));
    }
    let location = match field(&form, "decision").as_str() {
        "allow" => authorize::approve(&*state.store, now, &state.settings, &req, &user).await?,
        "deny" => authorize::deny(&*state.store, now, &req, &user).await?,
        _ => return Err(render("decision must be allow or deny")),
    };
    Ok(pages::see_other(&location))
}
