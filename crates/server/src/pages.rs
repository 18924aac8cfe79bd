//! The HTML pages (askama templates in `templates/`), and the security headers every page
//! route answers with.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use tower_http::set_header::SetResponseHeaderLayer;

use grantry_core::sessions;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// The flow's authorization path: the form posts to `{action}/login`.
    pub action: &'a str,
    pub app_name: &'a str,
    pub query: &'a str,
    pub error: Option<&'a str>,
    /// Bound to the browser's pre-session cookie (login CSRF).
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    /// The flow's authorization path, which the decision is posted to.
    pub action: &'a str,
    pub app_name: &'a str,
    pub app_description: &'a str,
    pub username: &'a str,
    pub grants: Vec<String>,
    pub query: &'a str,
    pub csrf: String,
}

/// OAuth 1.0a with the `oob` callback: the verifier for the user to type into the
/// application (RFC 5849 §2.2).
#[derive(Template)]
#[template(path = "verifier.html")]
pub struct VerifierPage<'a> {
    pub app_name: &'a str,
    pub verifier: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

/// A rendered page with `status`.
pub fn page(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ConsoleErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// The console's error page: what happened, and the way back.
pub fn console_error(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, &ConsoleErrorPage { title, message })
}

/// The error page, telling the user what happened.
pub fn error(status: StatusCode, message: &str) -> Response {
    page(status, &ErrorPage { message })
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect").into_response(),
    }
}

/// Pages are never cached, framed or given a referrer, and load nothing from elsewhere:
/// `routes` with those headers on every answer.
pub fn with_security_headers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    let set =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    routes
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
}

/// The console's pages: the same headers, with its own stylesheet and script allowed (from
/// this origin only) and forms posted only to it.
pub fn with_console_headers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    let set =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    routes
        .layer(set(header::CACHE_CONTROL, "no-store"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}

/// What binds a sign-in form to the browser it was shown in (login CSRF): a pre-session
/// cookie, sent only to the form's own path, that the form's CSRF token is keyed by
/// (`sessions::csrf_token`), so another site cannot post a sign-in into the user's browser.
pub struct FormBinding {
    pub cookie: &'static str,
    pub path: &'static str,
}

impl FormBinding {
    /// The browser's pre-session cookie (set in the returned jar when it has none) and the
    /// form's CSRF token for `context`.
    pub fn token(&self, secure: bool, jar: CookieJar, context: &str) -> (CookieJar, String) {
        let (jar, value) = match jar.get(self.cookie).map(|c| c.value().to_string()) {
            Some(v) => (jar, v),
            None => {
                let v = sessions::login_binding();
                let cookie = Cookie::build((self.cookie, v.clone()))
                    .path(self.path)
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .secure(secure)
                    .build();
                (jar.add(cookie), v)
            }
        };
        (jar, sessions::csrf_token(&value, context))
    }

    /// Whether a posted form came from one this browser was shown for `context`.
    pub fn matches(&self, jar: &CookieJar, context: &str, presented: &str) -> bool {
        jar.get(self.cookie)
            .is_some_and(|c| sessions::csrf_matches(c.value(), context, presented))
    }

    /// The jar without the cookie (once signed in, it has served its purpose).
    pub fn forget(&self, jar: CookieJar) -> CookieJar {
        jar.remove(Cookie::build(self.cookie).path(self.path))
    }
}
