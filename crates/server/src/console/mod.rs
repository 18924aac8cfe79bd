//! The admin console (docs/architecture.md, the console): server-rendered pages where org
//! admins run their organization (Organization Settings → Application Account Access, Users,
//! API Users, the audit log) and every UI user manages their own account. Every action is a
//! plain HTML form posted with the session's CSRF token and answered with a redirect to its
//! page and a flash message, except those that create a secret: their answer is the one page
//! that shows it. Handlers call the same `grantry_core::admin` functions as the CLI.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use secrecy::SecretString;

use grantry_core::admin::{AdminError, Ctx};
use grantry_core::model::{Org, Role, User};
use grantry_core::{sessions, Timestamp};

use crate::authorize::SESSION_COOKIE;
use crate::error::console::ConsoleError;
use crate::extract::{content_type, form_pairs, Now};
use crate::{limits, pages, AppState};

mod account;
mod api_users;
mod audit;
mod session;
mod settings;
mod users;

/// The flash message cookie: what the last action did, shown once on the next page.
const FLASH_COOKIE: &str = "grantry_flash";

/// The console's routes, with the pages' security headers and the forms' body limit.
pub fn routes() -> Router<AppState> {
    let routes = Router::new()
        .route("/console", get(home))
        .route(
            "/console/sign-in",
            get(session::page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route(
            "/console/password",
            get(session::password_page).post(session::set_password),
        )
        .route("/console/settings", get(settings::page))
        .route("/console/applications", post(settings::add_application))
        .route(
            "/console/applications/{client_id}",
            get(settings::application),
        )
        .route(
            "/console/applications/{client_id}/rotate",
            post(settings::rotate_secret),
        )
        .route(
            "/console/applications/{client_id}/delete",
            get(settings::confirm_delete).post(settings::delete_application),
        )
        .route("/console/access", post(settings::add_access))
        .route(
            "/console/access/delete",
            get(settings::confirm_delete_access).post(settings::delete_access),
        )
        .route("/console/users", get(users::page).post(users::add))
        .route("/console/users/{username}", get(users::user))
        .route(
            "/console/users/{username}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/console/users/{username}/{action}", post(users::act))
        .route(
            "/console/api-users",
            get(api_users::page).post(api_users::add),
        )
        .route("/console/api-users/{username}", get(api_users::user))
        .route(
            "/console/api-users/{username}/keys",
            post(api_users::generate_key),
        )
        .route(
            "/console/api-users/{username}/keys/{slot}/delete",
            get(api_users::confirm_delete_key).post(api_users::delete_key),
        )
        .route("/console/audit", get(audit::page))
        .route("/console/account", get(account::page))
        .route("/console/account/consents/delete", post(account::withdraw))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/static/console.js", get(script))
        .layer(DefaultBodyLimit::max(limits::CONSOLE_BODY));
    pages::with_console_headers(routes)
}

/// `GET /console`: the first page for who is signed in.
async fn home(console: Console) -> Response {
    match console.is_admin() {
        true => pages::see_other("/console/settings"),
        false => pages::see_other("/console/account"),
    }
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("console.css"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("console.js"))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// A flash message: what the last action did (or why it was refused).
#[derive(Clone, Debug)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
}

/// A signed-in console user, for a page or an action: the user, their organization, the
/// session id (for CSRF tokens), the request's time and the flash message to show.
pub struct Console {
    pub user: User,
    pub org: Org,
    sid: String,
    pub now: Timestamp,
    jar: CookieJar,
    pub flash: Option<Flash>,
    secure: bool,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Now(now)) = Now::from_request_parts(parts, state).await;
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(sid) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
            return Err(ConsoleError::SignedOut);
        };
        let user = sessions::console_user(&*state.store, now, &state.settings, &sid)
            .await?
            .ok_or(ConsoleError::SignedOut)?;
        let path = parts.uri.path();
        if user.must_change_password && path != "/console/password" && path != "/console/sign-out" {
            return Err(ConsoleError::MustChangePassword);
        }
        let org = state
            .store
            .org_by_id(user.org_id)
            .await?
            .ok_or(ConsoleError::SignedOut)?;
        let flash = jar.get(FLASH_COOKIE).and_then(|c| parse_flash(c.value()));
        Ok(Console {
            user,
            org,
            sid,
            now,
            jar,
            flash,
            secure: state.settings.secure_cookies(),
        })
    }
}

fn parse_flash(v: &str) -> Option<Flash> {
    let decoded: String = form_urlencoded::parse(v.as_bytes())
        .find(|(k, _)| k == "m")
        .map(|(_, m)| m.into_owned())?;
    let (ok, message) = match decoded.split_once(':') {
        Some(("ok", m)) => (true, m),
        Some((_, m)) => (false, m),
        None => (false, decoded.as_str()),
    };
    Some(Flash {
        ok,
        message: message.chars().take(500).collect(),
    })
}

impl Console {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::OrgAdmin
    }

    /// Only org admins go on.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        match self.is_admin() {
            true => Ok(()),
            false => Err(ConsoleError::Forbidden),
        }
    }

    /// The CSRF token of every form shown in this session.
    pub fn csrf(&self) -> String {
        sessions::csrf_token(&self.sid, CSRF_CONTEXT)
    }

    /// The session's digest: the session a password change keeps.
    pub fn session_digest(&self) -> grantry_core::credential::Digest {
        grantry_core::credential::Digest::of(&self.sid)
    }

    pub fn session_id(&self) -> &str {
        &self.sid
    }

    /// The admin operations' context: this request's time, acting as the signed-in user.
    pub fn ctx<'a>(&'a self, state: &'a AppState) -> Ctx<'a> {
        Ctx {
            store: &*state.store,
            now: self.now,
            settings: &state.settings,
            actor: &self.user.username,
            request_id: None,
            idempotency: None,
        }
    }

    /// What every page's frame shows: the organization, the user, the navigation, the
    /// flash message.
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            org: self.org.name.clone(),
            username: self.user.username.clone(),
            admin: self.is_admin(),
            csrf: self.csrf(),
            flash: self.flash.clone(),
            section,
        }
    }

    /// A page, with the flash message it shows cleared.
    pub fn render(&self, page: &impl askama::Template) -> Response {
        self.render_status(StatusCode::OK, page)
    }

    pub fn render_status(&self, status: StatusCode, page: &impl askama::Template) -> Response {
        let jar = match self.flash {
            Some(_) => self
                .jar
                .clone()
                .remove(Cookie::build(FLASH_COOKIE).path("/console")),
            None => CookieJar::new(),
        };
        (jar, pages::page(status, page)).into_response()
    }

    /// To `to`, with `message` to show there.
    pub fn redirect(&self, to: &str, ok: bool, message: &str) -> Response {
        let value: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(
                "m",
                &format!("{}:{message}", if ok { "ok" } else { "error" }),
            )
            .finish();
        let cookie = Cookie::build((FLASH_COOKIE, value))
            .path("/console")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(time::Duration::seconds(60))
            .build();
        (CookieJar::new().add(cookie), pages::see_other(to)).into_response()
    }

    /// An admin operation's outcome: `done` on success, its refusal otherwise, both shown on
    /// `back`; a store failure is the console's error.
    pub fn outcome<T>(
        &self,
        back: &str,
        result: Result<T, AdminError>,
        done: impl FnOnce(T) -> String,
    ) -> Result<Response, ConsoleError> {
        match result {
            Ok(v) => Ok(self.redirect(back, true, &done(v))),
            Err(e) => self.refused(back, e),
        }
    }

    /// An admin operation's refusal, shown on `back`.
    pub fn refused(&self, back: &str, e: AdminError) -> Result<Response, ConsoleError> {
        match e {
            AdminError::Store(e) => Err(ConsoleError::Store(e)),
            e => Ok(self.redirect(back, false, &e.to_string())),
        }
    }
}

/// The context every console CSRF token is keyed to, with the session id.
const CSRF_CONTEXT: &str = "console";

/// What the layout shows around every page.
pub struct Chrome {
    pub org: String,
    pub username: String,
    pub admin: bool,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// The navigation entry to mark as current.
    pub section: &'static str,
}

/// A posted console form: the signed-in user and the form's fields, once its CSRF token
/// matched the session's.
pub struct ConsoleForm {
    pub console: Console,
    pub fields: Fields,
}

impl FromRequest<AppState> for ConsoleForm {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let form =
            content_type(&parts.headers).as_deref() == Some("application/x-www-form-urlencoded");
        let req = Request::from_parts(parts, body);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|r| ConsoleError::BadForm(format!("The form could not be read: {r}")))?;
        if !form {
            return Err(ConsoleError::BadForm(
                "Send the form as the page does (application/x-www-form-urlencoded).".into(),
            ));
        }
        let fields = Fields(form_pairs(&body));
        let presented = fields.get("csrf").unwrap_or_default();
        if !sessions::csrf_matches(&console.sid, CSRF_CONTEXT, presented) {
            return Err(ConsoleError::Csrf);
        }
        Ok(ConsoleForm { console, fields })
    }
}

/// A form's fields, in order; a checkbox group repeats its name.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Fields(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or "".
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_string()
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the checkbox `name` was checked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A password field, kept secret.
    pub fn secret(&self, name: &str) -> SecretString {
        SecretString::from(self.get(name).unwrap_or_default().to_string())
    }
}

/// A time as the console shows it (UTC, to the minute).
pub fn when(t: Timestamp) -> String {
    t.to_rfc3339()
        .get(..16)
        .map(|s| s.replace('T', " ") + " UTC")
        .unwrap_or_default()
}

/// An optional time, or "never".
pub fn when_or_never(t: Option<Timestamp>) -> String {
    t.map(when).unwrap_or_else(|| "never".into())
}

/// One item of a one-time display: a labelled secret with a copy button.
pub struct Shown {
    pub label: &'static str,
    pub id: &'static str,
    pub value: String,
}
