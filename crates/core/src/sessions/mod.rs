//! Browser sessions of UI users: the sign-in page of the web-server flow checks a
//! UI user's username and password (argon2id) and starts a session carried by a cookie.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Timestamp;
use crate::credential::{self, hmac_sha256, password, Digest, Kind};
use crate::model::{OrgId, User, UserKind};
use crate::settings::Settings;
use crate::store::{NewAudit, SessionStore, Store, StoreError};

/// How long a signed-in session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// A PHC string to verify against when the user does not exist, so that a wrong username
/// takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1X7kEhJ0vZ0pBvP3fTqk6c1Fq0m0S7o4b2y0Hq3iQxI";

/// Checks a UI user's username and password in `org`. On success returns the user and a new
/// session id (for the cookie); a failure is audited when the user exists.
pub async fn login(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    org: OrgId,
    username: &str,
    password: &SecretString,
) -> Result<Option<(User, SecretString)>, StoreError> {
    if !crate::validate::storable(username) {
        // No user has such a name: refused like a wrong one, without a lookup.
        return Ok(None);
    }
    let user = store.user_by_username(org, username).await?;
    let hash = match &user {
        Some(u) if u.kind == UserKind::Ui && !u.disabled => store.password_hash(u.id).await?,
        _ => None,
    };
    let ok = password::verify(
        password.expose_secret(),
        hash.as_deref().unwrap_or(DUMMY_HASH),
    ) && hash.is_some();
    let Some(user) = user.filter(|_| ok) else {
        if let Some(u) = store.user_by_username(org, username).await? {
            let target = format!("user:{}", u.username);
            let window = settings.audit.failure_window;
            let audit = NewAudit::auth_failed(org, now, username, target, "wrong password", window);
            store.record_audit(audit).await?;
        }
        return Ok(None);
    };
    let session = credential::mint(Kind::Session, &settings.pod_id);
    store
        .create_session(session.digest, user.id, now, now.plus(SESSION_TTL))
        .await?;
    let target = format!("user:{username}");
    let audit = NewAudit::new(Some(org), now, username, "user.signed_in", target);
    store.record_audit(audit).await?;
    Ok(Some((user, session.value)))
}

/// The user signed in with this session id, if the session is live at `now`.
pub async fn current_user(
    store: &dyn SessionStore,
    now: Timestamp,
    session: &str,
) -> Result<Option<User>, StoreError> {
    store.session_user(&Digest::of(session), now).await
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
