//! Signing in to the console and out of it, and setting a new password (which a one-time
//! password asks for before anything else).

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use grantry_core::admin::{self, PasswordChange};
use grantry_core::sessions::{self, ConsoleLoginForm, Login};

use super::{Chrome, Console, ConsoleForm, Fields};
use crate::authorize::SESSION_COOKIE;
use crate::error::console::ConsoleError;
use crate::extract::{content_type, form_pairs, Now, Source};
use crate::{pages, AppState};

/// The sign-in form's binding to its browser (login CSRF).
const SIGN_IN: pages::FormBinding = pages::FormBinding {
    cookie: "grantry_console_login",
    path: "/console",
};
/// The CSRF context of the sign-in form.
const SIGN_IN_CONTEXT: &str = "console-sign-in";

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage<'a> {
    error: Option<&'a str>,
    csrf: String,
    org: &'a str,
    username: &'a str,
}

fn sign_in_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    error: Option<&str>,
    org: &str,
    username: &str,
) -> Response {
    let (jar, csrf) = SIGN_IN.token(state.settings.secure_cookies(), jar, SIGN_IN_CONTEXT);
    let page = SignInPage {
        error,
        csrf,
        org,
        username,
    };
    (jar, pages::page(status, &page)).into_response()
}

/// `GET /console/sign-in`.
pub async fn page(State(state): State<AppState>, jar: CookieJar) -> Response {
    sign_in_page(&state, jar, StatusCode::OK, None, "", "")
}

/// What a refused sign-in says: the same for a wrong organization, username or password, and
/// why an API user cannot sign in at all.
const REFUSED: &str = "Wrong organization, username or password. API users cannot sign in: \
    they can only access APIs, with their Key ID and a secret key.";

/// `POST /console/sign-in`: organization, username and password.
pub async fn sign_in(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    if content_type(&headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ConsoleError::BadForm(
            "Send the form as the page does (application/x-www-form-urlencoded).".into(),
        ));
    }
    let fields = Fields::new(form_pairs(&body));
    let presented = fields.get("csrf").unwrap_or_default();
    if !SIGN_IN.matches(&jar, SIGN_IN_CONTEXT, presented) {
        return Err(ConsoleError::Csrf);
    }
    let (org, username) = (fields.text("org"), fields.text("username"));
    let password = fields.secret("password");
    let form = ConsoleLoginForm {
        org: &org,
        username: &username,
        password: &password,
    };
    let outcome = sessions::console_login(
        &*state.store,
        now,
        &state.settings,
        state.attempt(source),
        &*state.passwords,
        form,
    )
    .await?;
    match outcome {
        Login::SignedIn(user, sid) => {
            let jar = SIGN_IN
                .forget(jar)
                .add(crate::authorize::session_cookie(&state, &sid));
            let to = match user.must_change_password {
                true => "/console/password",
                false => "/console",
            };
            Ok((jar, pages::see_other(to)).into_response())
        }
        Login::Refused => Ok(sign_in_page(
            &state,
            jar,
            StatusCode::UNAUTHORIZED,
            Some(REFUSED),
            &org,
            &username,
        )),
        Login::Throttled(t) => {
            let secs = t.retry_after.as_secs().max(1);
            let message = format!("Too many failed sign-ins. Wait {secs} seconds, then try again.");
            let mut response = sign_in_page(
                &state,
                jar,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&message),
                &org,
                &username,
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            Ok(response)
        }
    }
}

/// `POST /console/sign-out`: ends the session everywhere it is used.
pub async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    sessions::end(&*state.store, form.console.session_id()).await?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, pages::see_other("/console/sign-in")).into_response())
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    chrome: Chrome,
    /// Signed in with a one-time password: no current password is asked for.
    forced: bool,
    min: usize,
}

/// `GET /console/password`.
pub async fn password_page(console: Console) -> Response {
    console.render(&PasswordPage {
        chrome: console.chrome("account"),
        forced: console.user.must_change_password,
        min: admin::users::MIN_PASSWORD,
    })
}

/// `POST /console/password`: the new password, twice (and the current one, unless the
/// user just signed in with a one-time password).
pub async fn set_password(
    State(state): State<AppState>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    let forced = console.user.must_change_password;
    let current = fields.secret("current");
    let (new, repeated) = (fields.secret("new"), fields.secret("repeat"));
    let change = PasswordChange {
        current: (!forced).then_some(&current),
        new: &new,
        repeated: &repeated,
        session: console.session_digest(),
    };
    let cx = console.ctx(&state);
    let done = admin::change_password(&cx, &*state.passwords, &console.user, change).await;
    match done {
        Ok(()) => Ok(console.redirect("/console", true, "Your password was changed.")),
        Err(e) => console.refused("/console/password", e),
    }
}
