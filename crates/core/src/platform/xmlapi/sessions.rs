//! `Login` and `Logout`: the XML API's sessions (docs/architecture.md, XML API sessions).
//! `Login` takes an API user's username and one of its secret keys (checked by
//! [`apikeys::check_key`], under the same limits as every secret key) and answers a session
//! id, shown once and stored as its digest; later calls name it in `;jsessionid=` or the
//! `JSESSIONID` cookie, and act with the API user's grants as they are at each call.
//!
//! A session is live while `now <= last_seen_at + idle_timeout + touch`, where `touch` is
//! [`SessionSettings::touch`]: a call records itself only when the recorded one is `touch`
//! old, so a session ends between `idle_timeout` and `idle_timeout + touch` after its last
//! call, never earlier.

use secrecy::{ExposeSecret, SecretString};

use crate::apikeys::{self, KeyOwner, KeyRefusal};
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::gate::{AuthMethod, Principal};
use crate::limits::Attempt;
use crate::model::UserKind;
use crate::settings::{SessionSettings, Settings};
use crate::store::{NewAudit, SessionBounds, SessionStart, Store};

use super::ops::{field, missing};
use super::{render, Element, Fault, FaultKind, ERR_LOGIN, ERR_SESSION, ERR_SESSION_LIMIT};

/// The longest `USERNAME` a `Login` may carry.
const MAX_USERNAME: usize = 255;
/// The longest `PASSWORD` (a secret key) a `Login` may carry.
const MAX_PASSWORD: usize = 1024;

const LOGIN_HELP: &str = "login failed: USERNAME must be an API user's username and PASSWORD \
    one of its secret keys; a UI user's password never opens the XML API";

/// A call on a live session: who it acts as, and the session's digest.
#[derive(Debug)]
pub struct SessionCall {
    pub principal: Principal,
    pub digest: Digest,
}

/// How long past its recorded last call a session stays live.
fn live_for(s: &SessionSettings) -> std::time::Duration {
    s.idle_timeout + s.touch()
}

fn login_failed(why: impl std::fmt::Display) -> Fault {
    Fault::new(
        ERR_LOGIN,
        FaultKind::Unauthenticated,
        format!("{LOGIN_HELP}: {why}"),
    )
}

fn session_refused(why: impl std::fmt::Display) -> Fault {
    Fault::new(
        ERR_SESSION,
        FaultKind::Unauthenticated,
        format!("Session expired or invalid: {why}; Login again"),
    )
}

/// `Login` at `now`: starts a session and answers its id, the org and the path parameter
/// that names it.
pub async fn login(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    el: &Element,
) -> Result<String, Fault> {
    let username = field(el, "USERNAME")?.ok_or_else(|| missing("USERNAME"))?;
    let password = field(el, "PASSWORD")?.ok_or_else(|| missing("PASSWORD"))?;
    if username.len() > MAX_USERNAME {
        return Err(Fault::invalid_field("USERNAME", "is too long"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Fault::invalid_field("PASSWORD", "is too long"));
    }
    let secret = SecretString::from(password.to_string());
    let owner = KeyOwner::Username(username);
    let checked = apikeys::check_key(store, now, settings, attempt, owner, &secret)
        .await
        .map_err(Fault::store)?;
    let (key, user) = match checked {
        Ok(found) => found,
        Err(KeyRefusal::Throttled(t)) => {
            return Err(Fault {
                retry_after: Some(t.retry_after_secs()),
                ..Fault::new(
                    ERR_LOGIN,
                    FaultKind::TooManyAttempts,
                    format!("login refused: {}", t.describe()),
                )
            })
        }
        Err(KeyRefusal::Unknown) => {
            return Err(login_failed("the username or secret key is wrong"))
        }
        Err(r) => return Err(login_failed(r.describe())),
    };
    let minted = credential::mint(Kind::XmlSession, &settings.pod_id);
    let audit = NewAudit::new(
        Some(user.org_id),
        now,
        &user.username,
        "xml_session.started",
        format!("user:{}", user.username),
    )
    .with_detail(serde_json::json!({ "key": key.id }));
    let s = &settings.sessions;
    let bounds = SessionBounds {
        live_for: live_for(s),
        max_per_org: s.max_per_org,
    };
    let started = store
        .start_xml_session(minted.digest, &user, &key, now, bounds, audit)
        .await
        .map_err(Fault::store)?;
    if started == SessionStart::OrgFull {
        return Err(Fault::new(
            ERR_SESSION_LIMIT,
            FaultKind::Business,
            format!(
                "login refused: this organization already has {} live XML API sessions, the \
                 most sessions.max_per_org allows; send Logout on sessions no longer in use \
                 (idle ones end after {} s)",
                s.max_per_org,
                s.idle_timeout.as_secs()
            ),
        ));
    }
    let id = minted.value.expose_secret();
    let mut inner = String::new();
    render::push_element(&mut inner, "SESSIONID", id);
    render::push_element(&mut inner, "ORGANIZATION_ID", &user.org_id.to_string());
    render::push_element(&mut inner, "SESSION_ENCODING", &format!(";jsessionid={id}"));
    Ok(render::success(&inner))
}

/// The principal of a call naming session `id` at `now`: the session must be live, its
/// user an enabled API user and the key it was opened with still working
/// ([`apikeys::refusal`]); the grants are the user's as they are now. Records the call when
/// the recorded one is [`SessionSettings::touch`] old.
pub async fn session_principal(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    id: &str,
) -> Result<SessionCall, Fault> {
    if let Some(pod) = credential::foreign_pod(settings, id) {
        return Err(session_refused(format_args!(
            "this session belongs to {pod}; call that pod's API host"
        )));
    }
    let digest = Digest::of(id);
    let s = &settings.sessions;
    let Some(session) = store
        .xml_session(&digest, now, live_for(s))
        .await
        .map_err(Fault::store)?
    else {
        return Err(session_refused(
            "the session is unknown, ended or was idle too long",
        ));
    };
    if session.user.kind != UserKind::Api {
        return Err(session_refused(
            "the session is unknown, ended or was idle too long",
        ));
    }
    if let Some((r, _)) = apikeys::refusal(&session.key, &session.user, now) {
        return Err(session_refused(r.describe()));
    }
    if now.0.saturating_sub(session.last_seen_at.0) >= s.touch().as_millis() as i64 {
        store
            .touch_xml_session(session.id, now)
            .await
            .map_err(Fault::store)?;
    }
    let grants = session.user.effective_grants();
    Ok(SessionCall {
        principal: Principal::of_user(session.user, grants, AuthMethod::XmlSession),
        digest,
    })
}

/// `Logout` on the session of `call`: ends it.
pub async fn logout(
    store: &dyn Store,
    now: Timestamp,
    call: &SessionCall,
) -> Result<String, Fault> {
    let p = &call.principal;
    let audit = NewAudit::new(
        Some(p.org_id),
        now,
        &p.username,
        "xml_session.ended",
        format!("user:{}", p.username),
    );
    if !store
        .end_xml_session(&call.digest, audit)
        .await
        .map_err(Fault::store)?
    {
        return Err(session_refused("the session has already ended"));
    }
    Ok(render::success(""))
}

/// `Logout` on a request that names no session.
pub fn logout_without_session() -> Fault {
    Fault::new(
        ERR_SESSION,
        FaultKind::Unauthenticated,
        "Session expired or invalid: Logout ends a Login session; name it with ;jsessionid=<id> \
         or the JSESSIONID cookie",
    )
}
