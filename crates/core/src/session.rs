//! Browser sessions of UI users: the login page of the web-server flow (seed 003) signs a
//! UI user in with username and password (argon2id) and sets a session cookie.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::audit::NewAudit;
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::error::StoreError;
use crate::model::{OrgId, User, UserKind};
use crate::password;
use crate::settings::Settings;
use crate::store::Store;

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
            let audit = NewAudit::auth_failed(
                org,
                now,
                username,
                format!("user:{}", u.username),
                "wrong password",
            );
            store.record_audit(audit).await?;
        }
        return Ok(None);
    };
    let session = credential::mint(Kind::Session, &settings.pod_id);
    store
        .create_session(session.digest, user.id, now, now.plus(SESSION_TTL))
        .await?;
    store
        .record_audit(NewAudit::new(
            Some(org),
            now,
            username,
            "user.signed_in",
            format!("user:{username}"),
        ))
        .await?;
    Ok(Some((user, session.value)))
}

/// The user signed in with this session id, if the session is live.
pub async fn current_user(
    store: &dyn Store,
    now: Timestamp,
    session: &str,
) -> Result<Option<User>, StoreError> {
    store.session_user(&Digest::of(session), now).await
}

/// A CSRF token for a form shown to a signed-in user: base64url(HMAC-SHA256(key = session id,
/// message = `context`)). It can be computed only with the session cookie, which the browser
/// never sends cross-site (SameSite=Lax) and scripts cannot read (HttpOnly).
pub fn csrf_token(session: &str, context: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(session.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(context.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Checks a CSRF token in constant time.
pub fn csrf_matches(session: &str, context: &str, presented: &str) -> bool {
    Digest::of(&csrf_token(session, context)).matches(&Digest::of(presented))
}
