//! Client authentication at the token endpoint family (RFC 6749 §2.3): `client_id` and
//! `client_secret` in the body, or HTTP Basic; secrets checked against their digests in
//! constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::{OAuthError, Params};
use crate::clock::Timestamp;
use crate::credential::{self, Digest};
use crate::limits::{Attempt, Door, Subject};
use crate::model::Application;
use crate::settings::Settings;
use crate::store::{NewAudit, Store};

/// How the client authenticated (RFC 6749 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `client_secret_basic`
    Basic,
    /// `client_secret_post`
    Post,
    /// A `client_id` with no secret (public clients).
    None,
}

/// The client's claimed identity.
#[derive(Debug)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub method: ClientAuthMethod,
}

impl ClientAuth {
    /// Reads the client's credentials from the body or from HTTP Basic. §2.3: a client uses
    /// one authentication method per request; §2.3.1: both Basic parts are form-urlencoded
    /// before base64.
    pub fn from_request(params: &Params, authorization: Option<&str>) -> Result<Self, OAuthError> {
        let (id, secret) = (params.get("client_id"), params.get("client_secret"));
        let basic = authorization.and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
        match (basic, id, secret) {
            (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
                "the client authenticated twice (HTTP Basic and client_secret); use one",
            )),
            (Some(b64), body_id, None) => from_basic(b64, body_id),
            (None, Some(id), secret) => Ok(ClientAuth {
                client_id: id.to_string(),
                secret: secret.map(|s| s.to_string().into()),
                method: if secret.is_some() {
                    ClientAuthMethod::Post
                } else {
                    ClientAuthMethod::None
                },
            }),
            (None, None, _) => Err(OAuthError::invalid_client(
                "client authentication is required: send client_id and client_secret in the body or with HTTP Basic",
                false,
            )),
        }
    }

    pub fn is_basic(&self) -> bool {
        self.method == ClientAuthMethod::Basic
    }

    /// `invalid_client` for this client, challenging for Basic when it used it.
    pub(crate) fn refused(&self, d: impl Into<String>) -> OAuthError {
        OAuthError::invalid_client(d, self.is_basic())
    }
}

fn from_basic(b64: &str, body_id: Option<&str>) -> Result<ClientAuth, OAuthError> {
    let malformed = || OAuthError::invalid_client("the HTTP Basic credentials are malformed", true);
    let raw = STANDARD.decode(b64).map_err(|_| malformed())?;
    let raw = String::from_utf8(raw).map_err(|_| malformed())?;
    let (u, p) = raw.split_once(':').ok_or_else(malformed)?;
    let (client_id, secret) = (form_decode(u), form_decode(p));
    if client_id.is_empty() {
        return Err(malformed());
    }
    if body_id.is_some_and(|b| b != client_id) {
        return Err(OAuthError::invalid_request(
            "client_id in the body differs from the HTTP Basic user name",
        ));
    }
    Ok(ClientAuth {
        client_id,
        secret: (!secret.is_empty()).then(|| secret.into()),
        method: ClientAuthMethod::Basic,
    })
}

/// One `application/x-www-form-urlencoded` value, decoded (RFC 6749 §2.3.1, Appendix B).
fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Authenticates the client against its stored secret digests, in constant time, under the
/// limits of `attempt` (docs/architecture.md, limits). A wrong secret for a known client is
/// audited; an unknown client id or a wrong secret counts against the source and the client.
pub async fn authenticate_client(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    client: &ClientAuth,
) -> Result<Application, OAuthError> {
    attempt.admit(Door::Client, &client.subject())?;
    refuse_foreign_secret(settings, attempt, client).await?;
    let Some(app) = store.application_by_client_id(&client.client_id).await? else {
        attempt
            .failed(Door::Client, Some(&client.subject()))
            .await?;
        return Err(client.unknown());
    };
    check_secret(store, now, settings, attempt, client, app).await
}

impl ClientAuth {
    /// What the limits count this client's failures against.
    pub(crate) fn subject(&self) -> Subject<'_> {
        Subject::client(&self.client_id)
    }

    /// `invalid_client` for a client id nobody has.
    pub(crate) fn unknown(&self) -> OAuthError {
        self.refused(format!(
            "Unable to find matching client for {}",
            self.client_id
        ))
    }
}

/// A client secret minted by another pod is refused naming that pod, before any lookup
/// (docs/architecture.md, Pods); it counts as a failure like any wrong secret.
async fn refuse_foreign_secret(
    settings: &Settings,
    attempt: Attempt<'_>,
    client: &ClientAuth,
) -> Result<(), OAuthError> {
    let secret = client.secret.as_ref().map(|s| s.expose_secret());
    let Some(pod) = secret.and_then(|s| credential::foreign_pod(settings, s)) else {
        return Ok(());
    };
    attempt
        .failed(Door::Client, Some(&client.subject()))
        .await?;
    Err(client.refused(format!(
        "this client secret belongs to {pod}; send the request to that pod"
    )))
}

/// Checks the credentials `client` presented for the application it named.
pub(crate) async fn verify_client(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    client: &ClientAuth,
    app: Application,
) -> Result<Application, OAuthError> {
    attempt.admit(Door::Client, &client.subject())?;
    refuse_foreign_secret(settings, attempt, client).await?;
    check_secret(store, now, settings, attempt, client, app).await
}

/// The secret `client` presented against the application's, once the door admitted it.
async fn check_secret(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    client: &ClientAuth,
    app: Application,
) -> Result<Application, OAuthError> {
    let subject = client.subject();
    match (&client.secret, app.public) {
        (None, true) => Ok(app),
        (None, false) => Err(client.refused("client_secret is required for this client")),
        (Some(_), true) => {
            Err(client.refused("this client is public and has no secret; send only client_id"))
        }
        (Some(secret), false) => {
            let presented = Digest::of(secret.expose_secret());
            let valid = store.client_secrets(app.id, now).await?;
            // Check every valid secret so the time taken does not say which one matched.
            let ok = valid
                .iter()
                .fold(false, |acc, d| d.matches(&presented) | acc);
            if ok {
                attempt.succeeded(Door::Client, &subject).await?;
                return Ok(app);
            }
            attempt.failed(Door::Client, Some(&subject)).await?;
            let target = format!("application:{}", app.client_id);
            let reason = "wrong client_secret";
            let audit = NewAudit::auth_failed(
                app.org_id,
                now,
                &app.client_id,
                target,
                reason,
                settings.audit.failure_window,
            );
            store.record_audit(audit).await?;
            Err(client.refused("client authentication failed: wrong client_secret"))
        }
    }
}
