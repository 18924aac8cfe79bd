//! Browser sessions of UI users: the sign-in page of the web-server flow checks a
//! UI user's username and password (argon2id) and starts a session carried by a cookie.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::SecretString;

use crate::clock::Timestamp;
use crate::credential::{self, hmac_sha256, password, Digest, Kind};
use crate::limits::{Attempt, Door, Subject, Throttled};
use crate::model::{OrgId, User, UserKind};
use crate::settings::Settings;
use crate::store::{NewAudit, SessionStore, Store, StoreError};

/// How long a signed-in session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A PHC string to verify against when the user does not exist, so that a wrong username
/// takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1X7kEhJ0vZ0pBvP3fTqk6c1Fq0m0S7o4b2y0Hq3iQxI";

/// What the sign-in page was sent.
pub struct LoginForm<'a> {
    pub org: OrgId,
    pub username: &'a str,
    pub password: &'a SecretString,
}

/// How a sign-in ended.
pub enum Login {
    /// The user, and a new session id for the cookie.
    SignedIn(User, SecretString),
    /// Wrong username or password (the answer does not say which).
    Refused,
    /// Too many failures from this address or for this account (docs/architecture.md,
    /// limits): the password was not checked.
    Throttled(Throttled),
}

/// Checks a UI user's username and password in the form's org, under the limits of
/// `attempt`, hashing on `passwords` (a bounded pool, never the request's worker). A failure
/// is counted against the source and the account, and audited when the user exists; a
/// success clears the account's failures.
pub async fn login(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    passwords: &dyn password::Verifier,
    form: LoginForm<'_>,
) -> Result<Login, StoreError> {
    let LoginForm {
        org,
        username,
        password,
    } = form;
    let subject = Subject::user(org, username);
    if let Err(t) = attempt.admit(Door::Login, &subject) {
        return Ok(Login::Throttled(t));
    }
    let user = if crate::validate::storable(username) {
        store.user_by_username(org, username).await?
    } else {
        // No user has such a name: refused like a wrong one, without a lookup.
        None
    };
    let hash = match &user {
        Some(u) if u.kind == UserKind::Ui && !u.disabled => store.password_hash(u.id).await?,
        _ => None,
    };
    let phc = hash.clone().unwrap_or_else(|| DUMMY_HASH.to_string());
    let ok = passwords.verify(password.clone(), phc).await && hash.is_some();
    let exists = user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        attempt.failed(Door::Login, Some(&subject)).await?;
        if exists {
            let target = format!("user:{username}");
            let window = settings.audit.failure_window;
            let audit = NewAudit::auth_failed(org, now, username, target, "wrong password", window);
            store.record_audit(audit).await?;
        }
        return Ok(Login::Refused);
    };
    attempt.succeeded(Door::Login, &subject).await?;
    let session = credential::mint(Kind::Session, &settings.pod_id);
    store
        .create_session(session.digest, user.id, now, now.plus(SESSION_TTL))
        .await?;
    let target = format!("user:{username}");
    let audit = NewAudit::new(Some(org), now, username, "user.signed_in", target);
    store.record_audit(audit).await?;
    Ok(Login::SignedIn(user, session.value))
}

/// The org a console sign-in names when no organization has that name: no user is in it, so
/// the sign-in is refused like a wrong password, after the same work.
const NO_ORG: OrgId = 0;

/// What the console's sign-in page was sent: the organization by name.
pub struct ConsoleLoginForm<'a> {
    pub org: &'a str,
    pub username: &'a str,
    pub password: &'a SecretString,
}

/// A console sign-in (docs/architecture.md, the console): the organization by name, then
/// [`login`] in it, under the same limits as the sign-in page of the web-server flow.
pub async fn console_login(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    passwords: &dyn password::Verifier,
    form: ConsoleLoginForm<'_>,
) -> Result<Login, StoreError> {
    let org = match crate::validate::storable(form.org) {
        true => store.org_by_name(form.org.trim()).await?.map(|o| o.id),
        false => None,
    };
    let form = LoginForm {
        org: org.unwrap_or(NO_ORG),
        username: form.username.trim(),
        password: form.password,
    };
    login(store, now, settings, attempt, passwords, form).await
}

/// The UI user of a console session live at `now` and used within
/// `console.idle_timeout` (plus its touch interval: the session ends between the two after
/// its last use, never earlier); records this use, which starts the idle time again, when
/// the recorded one is at least the touch interval old (docs/architecture.md, the console).
pub async fn console_user(
    store: &dyn SessionStore,
    now: Timestamp,
    settings: &Settings,
    session: &str,
) -> Result<Option<User>, StoreError> {
    let touch = settings.console.touch();
    let idle_since = now.minus(settings.console.idle_timeout + touch);
    store
        .touch_session(&Digest::of(session), now, idle_since, now.minus(touch))
        .await
}

/// Ends a session (sign out).
pub async fn end(store: &dyn SessionStore, session: &str) -> Result<(), StoreError> {
    store.delete_session(&Digest::of(session)).await
}

/// The user signed in with this session id, if the session is live at `now`.
pub async fn current_user(
    store: &dyn SessionStore,
    now: Timestamp,
    session: &str,
) -> Result<Option<User>, StoreError> {
    store.session_user(&Digest::of(session), now).await
}

/// A random value for the pre-session cookie of the sign-in form: the form's CSRF token is
/// [`csrf_token`] keyed by it, so a page on another site cannot post a sign-in into the
/// user's browser (login CSRF, which would sign the victim into the attacker's account).
pub fn login_binding() -> String {
    URL_SAFE_NO_PAD.encode(credential::random_bytes::<32>())
}

/// A CSRF token for a form shown to a signed-in user: base64url(HMAC-SHA256(key = session id,
/// message = `context`)). It can be computed only with the session cookie, which the browser
/// never sends cross-site (SameSite=Lax) and scripts cannot read (HttpOnly).
pub fn csrf_token(session: &str, context: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(session.as_bytes(), &[context.as_bytes()]))
}

/// Checks a CSRF token in constant time.
pub fn csrf_matches(session: &str, context: &str, presented: &str) -> bool {
    Digest::of(&csrf_token(session, context)).matches(&Digest::of(presented))
}
