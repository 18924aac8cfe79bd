//! `GET/POST /oauth/authorize`: the web-server flow's sign-in and consent pages (RFC 6749
//! §4.1). The original query string travels through both forms and is validated
//! again on every step.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use secrecy::{ExposeSecret, SecretString};

use grantry_core::limits::Throttled;
use grantry_core::model::User;
use grantry_core::oauth::authorize::{self, AuthorizeError, AuthorizeRequest};
use grantry_core::sessions::{self, Login, LoginForm};
use grantry_core::Timestamp;

use crate::error::ApiError;
use crate::extract::{form_pairs, Now, Source};
use crate::pages::{self, ConsentPage, LoginPage};
use crate::AppState;

/// The cookie that carries a signed-in browser session.
pub const SESSION_COOKIE: &str = "grantry_session";

fn server_error(e: grantry_core::StoreError) -> ApiError {
    ApiError::Authorize(AuthorizeError::from(e))
}

fn render(description: &str) -> ApiError {
    ApiError::Authorize(AuthorizeError::Render {
        description: description.into(),
    })
}

/// The signed-in user of the session cookie, and the session id.
pub(crate) async fn signed_in(
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

/// The cookie that binds the sign-in form to the browser it was shown in (login CSRF).
pub const LOGIN_COOKIE: &str = "grantry_login";

/// The sign-in form's binding to its browser.
const LOGIN: pages::FormBinding = pages::FormBinding {
    cookie: LOGIN_COOKIE,
    path: "/oauth/authorize",
};

/// The sign-in form's binding: the browser's pre-session cookie (set when it has none) and
/// the form's CSRF token derived from it and the request.
struct LoginBinding {
    jar: CookieJar,
    csrf: String,
}

fn login_binding(state: &AppState, jar: CookieJar, query: &str) -> LoginBinding {
    let secure = state.settings.secure_cookies();
    let (jar, csrf) = LOGIN.token(secure, jar, &format!("login:{query}"));
    LoginBinding { jar, csrf }
}

/// Whether a posted sign-in came from a form this browser was shown.
fn login_form_matches(jar: &CookieJar, query: &str, presented: &str) -> bool {
    LOGIN.matches(jar, &format!("login:{query}"), presented)
}

fn login_page(
    state: &AppState,
    jar: CookieJar,
    (req, query): (&AuthorizeRequest, &str),
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let binding = login_binding(state, jar, query);
    let p = LoginPage {
        action: "/oauth/authorize",
        app_name: &req.app.name,
        query,
        error,
        csrf: &binding.csrf,
    };
    (binding.jar, pages::page(status, &p)).into_response()
}

/// The sign-in page again after a throttled attempt: 429 with `Retry-After` (RFC 6585 §4),
/// saying how long to wait; the password was not checked.
fn throttled_page(
    state: &AppState,
    jar: CookieJar,
    form: (&AuthorizeRequest, &str),
    t: &Throttled,
) -> Response {
    let why = format!(
        "Too many failed sign-ins. Wait {} seconds, then try again.",
        t.retry_after_secs()
    );
    let mut resp = login_page(state, jar, form, StatusCode::TOO_MANY_REQUESTS, Some(&why));
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(t.retry_after_secs()));
    resp
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
                action: "/oauth/authorize",
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
        _ => Ok(login_page(
            state,
            jar.clone(),
            (req, query),
            StatusCode::OK,
            None,
        )),
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

pub(crate) fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The session cookie (the web-server flow's sign-in page and the console share it): `Secure`
/// unless the public URL is plain HTTP on loopback, never readable by scripts, never sent
/// cross-site.
pub(crate) fn session_cookie(state: &AppState, sid: &SecretString) -> Cookie<'static> {
    let max_age = sessions::SESSION_TTL.as_secs() as i64;
    Cookie::build((SESSION_COOKIE, sid.expose_secret().to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .secure(state.settings.secure_cookies())
        .build()
}

/// A sign-in or consent form that could not be read, rendered to the user.
pub(crate) fn form_refused(r: &BytesRejection) -> Response {
    crate::error::oauth::authorize_body_refused(crate::error::BodyProblem::of(
        r,
        crate::limits::AUTHORIZE_BODY,
    ))
}

/// `POST /oauth/authorize/login`: `username`, `password` and the original `query`.
pub async fn login(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
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
    if !login_form_matches(&jar, &query, &field(&form, "csrf")) {
        // Not from a form this browser was shown: nothing is checked or counted.
        let why = "The sign-in form was out of date; sign in again.";
        return Ok(login_page(
            &state,
            jar,
            (&req, &query),
            StatusCode::FORBIDDEN,
            Some(why),
        ));
    }
    let password = SecretString::from(field(&form, "password"));
    let username = field(&form, "username");
    let login = LoginForm {
        org: req.app.org_id,
        username: &username,
        password: &password,
    };
    let (store, settings) = (&*state.store, &state.settings);
    let attempt = state.attempt(source);
    let signed = sessions::login(store, now, settings, attempt, &*state.passwords, login)
        .await
        .map_err(server_error)?;
    let sid = match signed {
        Login::SignedIn(_, sid) => sid,
        Login::Refused => {
            let why = "Wrong username or password.";
            let status = StatusCode::UNAUTHORIZED;
            return Ok(login_page(&state, jar, (&req, &query), status, Some(why)));
        }
        Login::Throttled(t) => return Ok(throttled_page(&state, jar, (&req, &query), &t)),
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
        let why = "Your session ended; sign in again.";
        let status = StatusCode::UNAUTHORIZED;
        return Ok(login_page(&state, jar, (&req, &query), status, Some(why)));
    };
    if !authorize::may_consent(&req, &user) {
        let why = "Sign in as a user of the application's organization.";
        let status = StatusCode::UNAUTHORIZED;
        return Ok(login_page(&state, jar, (&req, &query), status, Some(why)));
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
