//! The OAuth 1.0a endpoints (RFC 5849 §2; docs/architecture.md, OAuth 1.0a): temporary
//! credentials, the resource owner's authorization on the web-server flow's sign-in and
//! consent pages, and token credentials. The protocol is `grantry_core::oauth1`; these
//! handlers only describe the request and render the answer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use secrecy::SecretString;

use grantry_core::limits::Throttled;
use grantry_core::oauth1::flow::{self, Approved, AuthorizePageError, Credentials, Pending};
use grantry_core::sessions::{self, Login, LoginForm};
use grantry_core::Timestamp;

use crate::authorize::{field, form_refused, session_cookie, signed_in};
use crate::error;
use crate::extract::{authorization, form_pairs, signed_request, Now, Presented, Source};
use crate::limits;
use crate::pages::{self, ConsentPage, LoginPage, VerifierPage};
use crate::AppState;

/// The flow's authorization path, which its forms post to.
const AUTHORIZE: &str = "/oauth1/authorize";

/// The sign-in form's binding to its browser (login CSRF).
const LOGIN: pages::FormBinding = pages::FormBinding {
    cookie: "grantry_login_oauth1",
    path: AUTHORIZE,
};

/// A request to one of the two credential endpoints, as its signature reads it.
async fn endpoint(
    state: &AppState,
    source: Source,
    (method, uri, headers): (&Method, &Uri, &HeaderMap),
    body: Result<Bytes, BytesRejection>,
    leg: impl AsyncFnOnce(
        &grantry_core::oauth1::SignedRequest<'_>,
    ) -> Result<Credentials, grantry_core::oauth1::OAuth1Error>,
    confirmed: bool,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            return error::oauth1::body_refused(error::BodyProblem::of(&r, limits::TOKEN_BODY))
        }
    };
    let auth = match authorization(headers) {
        Ok(a) => a,
        Err(e) => {
            let e = grantry_core::oauth1::OAuth1Error::new(
                grantry_core::oauth1::Problem::ParameterRejected,
                e.description,
            );
            return error::oauth1::response(e);
        }
    };
    let presented = Presented {
        method,
        uri,
        headers,
        body: Some(&body),
    };
    let signed = signed_request(state, source, &presented, auth);
    match leg(&signed).await {
        Ok(c) => {
            let mut pairs = vec![
                ("oauth_token", c.token.as_str()),
                ("oauth_token_secret", c.secret.as_str()),
            ];
            if confirmed {
                pairs.push(("oauth_callback_confirmed", "true"));
            }
            error::oauth1::credentials(&pairs)
        }
        Err(e) => error::oauth1::response(e),
    }
}

/// `POST /oauth1/request_token` (RFC 5849 §2.1).
pub async fn request_token(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (store, settings) = (&*state.store, &state.settings);
    let attempt = state.attempt(source);
    let leg = async |req: &grantry_core::oauth1::SignedRequest<'_>| {
        flow::request_token(store, now, settings, attempt, req).await
    };
    endpoint(&state, source, (&method, &uri, &headers), body, leg, true).await
}

/// `POST /oauth1/access_token` (RFC 5849 §2.3).
pub async fn access_token(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (store, settings) = (&*state.store, &state.settings);
    let attempt = state.attempt(source);
    let leg = async |req: &grantry_core::oauth1::SignedRequest<'_>| {
        flow::access_token(store, now, settings, attempt, req).await
    };
    endpoint(&state, source, (&method, &uri, &headers), body, leg, false).await
}

/// A page that cannot go on: what to tell the user, or a server failure.
fn page_error(e: AuthorizePageError) -> Response {
    match e {
        AuthorizePageError::Render(m) => pages::error(StatusCode::BAD_REQUEST, &m),
        AuthorizePageError::Server(e) => {
            tracing::error!(cause = %e, "OAuth 1.0a authorization page failed");
            let status = match e.is_unavailable() {
                true => StatusCode::SERVICE_UNAVAILABLE,
                false => StatusCode::INTERNAL_SERVER_ERROR,
            };
            pages::error(
                status,
                "The server could not continue; try again in a moment.",
            )
        }
    }
}

/// The pending request the query names.
async fn pending(state: &AppState, now: Timestamp, query: &str) -> Result<Pending, Response> {
    let pairs = form_pairs(query.as_bytes());
    flow::pending(&*state.store, now, &state.settings, &pairs)
        .await
        .map_err(page_error)
}

fn login_page(
    state: &AppState,
    jar: CookieJar,
    (p, query): (&Pending, &str),
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let secure = state.settings.secure_cookies();
    let (jar, csrf) = LOGIN.token(secure, jar, &format!("login:{query}"));
    let page = LoginPage {
        action: AUTHORIZE,
        app_name: &p.app().name,
        query,
        error,
        csrf: &csrf,
    };
    (jar, pages::page(status, &page)).into_response()
}

fn throttled_page(
    state: &AppState,
    jar: CookieJar,
    form: (&Pending, &str),
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

/// `GET /oauth1/authorize?oauth_token=...` (RFC 5849 §2.2): the sign-in page, or the
/// consent page for a signed-in UI user of the application's org.
pub async fn start(
    State(state): State<AppState>,
    Now(now): Now,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    let query = q.unwrap_or_default();
    let p = match pending(&state, now, &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = match signed_in(&state, now, &jar).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    match user {
        Some((user, sid)) if flow::may_authorize(&p, &user) => {
            let page = ConsentPage {
                action: AUTHORIZE,
                app_name: &p.app().name,
                app_description: &p.app().description,
                username: &user.username,
                grants: p
                    .record
                    .scopes
                    .iter()
                    .map(|g| g.describe().to_string())
                    .collect(),
                query: &query,
                csrf: sessions::csrf_token(&sid, &query),
            };
            pages::page(StatusCode::OK, &page)
        }
        _ => login_page(&state, jar, (&p, &query), StatusCode::OK, None),
    }
}

/// `POST /oauth1/authorize/login`: `username`, `password` and the original `query`.
pub async fn login(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
    jar: CookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return form_refused(&r),
    };
    let form = form_pairs(&body);
    let query = field(&form, "query");
    let p = match pending(&state, now, &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !LOGIN.matches(&jar, &format!("login:{query}"), &field(&form, "csrf")) {
        let why = "The sign-in form was out of date; sign in again.";
        return login_page(&state, jar, (&p, &query), StatusCode::FORBIDDEN, Some(why));
    }
    let password = SecretString::from(field(&form, "password"));
    let username = field(&form, "username");
    let login = LoginForm {
        org: p.app().org_id,
        username: &username,
        password: &password,
    };
    let (store, settings) = (&*state.store, &state.settings);
    let attempt = state.attempt(source);
    let signed =
        match sessions::login(store, now, settings, attempt, &*state.passwords, login).await {
            Ok(s) => s,
            Err(e) => return page_error(AuthorizePageError::Server(e)),
        };
    let sid = match signed {
        Login::SignedIn(_, sid) => sid,
        Login::Refused => {
            let why = "Wrong username or password.";
            return login_page(
                &state,
                jar,
                (&p, &query),
                StatusCode::UNAUTHORIZED,
                Some(why),
            );
        }
        Login::Throttled(t) => return throttled_page(&state, jar, (&p, &query), &t),
    };
    let jar = jar.add(session_cookie(&state, &sid));
    (jar, pages::see_other(&format!("{AUTHORIZE}?{query}"))).into_response()
}

/// `POST /oauth1/authorize`: the consent decision (`decision=allow|deny`), with `csrf` and
/// the original `query`.
pub async fn decide(
    State(state): State<AppState>,
    Now(now): Now,
    jar: CookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return form_refused(&r),
    };
    let form = form_pairs(&body);
    let query = field(&form, "query");
    let p = match pending(&state, now, &query).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = match signed_in(&state, now, &jar).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let Some((user, sid)) = user.filter(|(u, _)| flow::may_authorize(&p, u)) else {
        let why = "Sign in as a user of the application's organization.";
        return login_page(
            &state,
            jar,
            (&p, &query),
            StatusCode::UNAUTHORIZED,
            Some(why),
        );
    };
    if !sessions::csrf_matches(&sid, &query, &field(&form, "csrf")) {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "The form is out of date; go back to the application and start again.",
        );
    }
    let store = &*state.store;
    match field(&form, "decision").as_str() {
        "allow" => match flow::approve(store, now, &p, &user).await {
            Ok(Approved::Redirect(to)) => pages::see_other(&to),
            Ok(Approved::ShowVerifier(v)) => {
                let page = VerifierPage {
                    app_name: &p.app().name,
                    verifier: &v,
                };
                pages::page(StatusCode::OK, &page)
            }
            Err(e) => page_error(e),
        },
        "deny" => match flow::deny(store, now, &p, &user).await {
            Ok(Some(to)) => pages::see_other(&to),
            Ok(None) => pages::error(
                StatusCode::OK,
                "You denied the request: nothing was shared with the application.",
            ),
            Err(e) => page_error(e),
        },
        _ => pages::error(StatusCode::BAD_REQUEST, "decision must be allow or deny"),
    }
}
