//! API users' secret keys as credentials: at most two per user, in slots 1 and 2;
//! generating fills the free slot, deleting slot 1 promotes slot 2, and a deleted key keeps
//! working for `api_keys.delete_grace` so callers can roll over without downtime. Keys are
//! presented with their owner's Key ID (`Bearer base64(<key id>:<secret>)`, the
//! `client_credentials` grant) or username (HTTP Basic).
//!
//! Generating and deleting keys are admin operations (`admin::api_keys`, which uses this module).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Timestamp;
use crate::credential::{self, Digest};
use crate::limits::{Attempt, Door, Subject, Throttled};
use crate::model::{ApiKey, User, UserKind};
use crate::settings::Settings;
use crate::store::{NewAudit, Store, StoreError};

/// How the caller named the API user a secret key belongs to.
#[derive(Clone, Copy)]
pub enum KeyOwner<'a> {
    KeyId(&'a str),
    Username(&'a str),
}

/// Why a secret key was refused, for the token endpoint and the APIs to phrase alike.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No such key for that Key ID or username.
    Unknown,
    /// Minted by another pod.
    ForeignPod(String),
    /// Deleted, and its grace period is over.
    Stopped(Timestamp),
    Disabled,
    /// Too many failures for this key or from this address: the secret was not checked.
    Throttled(Throttled),
}

impl KeyRefusal {
    pub fn describe(&self) -> String {
        match self {
            KeyRefusal::Unknown => "the Key ID or secret key is wrong".into(),
            KeyRefusal::ForeignPod(p) => {
                format!("this secret key belongs to {p}; call that pod's API host")
            }
            KeyRefusal::Stopped(t) => format!(
                "this secret key was deleted and stopped working at {}; use the API user's other key",
                t.to_rfc3339()
            ),
            KeyRefusal::Disabled => "the API user is disabled".into(),
            KeyRefusal::Throttled(t) => t.describe(),
        }
    }
}

/// Checks an API secret key presented with its owner's Key ID or username at `now`, under
/// the limits of `attempt` (docs/architecture.md, limits). A refusal of a known key is
/// audited; a secret that matches nothing counts against the source and the named owner.
pub async fn check_key(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    owner: KeyOwner<'_>,
    secret: &SecretString,
) -> Result<Result<(ApiKey, User), KeyRefusal>, StoreError> {
    let subject = match owner {
        KeyOwner::KeyId(id) => Subject::key_id(id),
        KeyOwner::Username(name) => Subject::basic(name),
    };
    if let Err(t) = attempt.admit(Door::ApiKey, &subject) {
        return Ok(Err(KeyRefusal::Throttled(t)));
    }
    let digest = Digest::of(secret.expose_secret());
    let found = find_key(store, settings, owner, secret.expose_secret(), &digest).await?;
    let (key, user) = match found {
        Ok(found) => found,
        Err(refusal) => {
            if refusal == KeyRefusal::Unknown {
                attempt.failed(Door::ApiKey, Some(&subject)).await?;
            }
            return Ok(Err(refusal));
        }
    };
    attempt.succeeded(Door::ApiKey, &subject).await?;
    let (refusal, reason) = match refusal(&key, &user, now) {
        None => {
            if key.use_is_news(now) {
                store.mark_api_key_used(&digest, key.id, now).await?;
            }
            return Ok(Ok((key, user)));
        }
        Some(r) => r,
    };
    let target = format!("user:{}", user.username);
    let window = settings.audit.failure_window;
    let audit = NewAudit::auth_failed(user.org_id, now, &user.username, target, reason, window);
    store.record_audit(audit).await?;
    Ok(Err(refusal))
}

/// The key a secret is and its API user, if the secret is one of `owner`'s keys.
async fn find_key(
    store: &dyn Store,
    settings: &Settings,
    owner: KeyOwner<'_>,
    secret: &str,
    digest: &Digest,
) -> Result<Result<(ApiKey, User), KeyRefusal>, StoreError> {
    if let Some(pod) = credential::foreign_pod(settings, secret) {
        return Ok(Err(KeyRefusal::ForeignPod(pod.to_string())));
    }
    let Some((key, user)) = store.api_key_by_digest(digest).await? else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    let owner_matches = match owner {
        KeyOwner::KeyId(id) => user.key_id.as_deref() == Some(id),
        KeyOwner::Username(name) => user.username == name,
    };
    if !owner_matches || user.kind != UserKind::Api {
        return Ok(Err(KeyRefusal::Unknown));
    }
    Ok(Ok((key, user)))
}

/// Whether a key of its owner stops working at `now` (a deleted key works until
/// its grace ends; a disabled user's keys stop at once), with the audit log's reason.
pub fn refusal(key: &ApiKey, user: &User, now: Timestamp) -> Option<(KeyRefusal, &'static str)> {
    if !key.works_at(now) {
        Some((
            KeyRefusal::Stopped(key.stops_at.unwrap_or(now)),
            "deleted secret key",
        ))
    } else if user.disabled {
        Some((KeyRefusal::Disabled, "disabled user"))
    } else {
        None
    }
}

/// Reads a bearer value of the form `base64(<key id>:<secret key>)`.
pub fn parse_bearer(value: &str) -> Option<(String, SecretString)> {
    let raw = STANDARD.decode(value.trim()).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (key_id, secret) = raw.split_once(':')?;
    if key_id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((key_id.to_string(), secret.to_string().into()))
}

/// Reads HTTP Basic credentials `base64(<user>:<password>)`.
pub fn parse_basic(value: &str) -> Option<(String, SecretString)> {
    parse_bearer(value)
}
