//! The authorization endpoint of the web-server flow (RFC 6749 §4.1, RFC 7636, RFC 9700
//! §2.1 and §4.1), as small check steps.
//!
//! Errors come in two families (RFC 6749 §4.1.2.1): until the client and its redirect URI are
//! trusted, an error is *rendered* to the user and never redirected; after that, it is sent
//! back to the client on its redirect URI with `error`, `error_description` and `state`.

use std::collections::HashSet;

use secrecy::ExposeSecret;

use super::pkce;
use crate::clock::Timestamp;
use crate::credential::{self, Kind};
use crate::model::{Application, User, UserKind};
use crate::permissions::GrantSet;
use crate::settings::Settings;
use crate::store::{
    AccountAccessStore, AuditStore, ClientStore, NewAudit, NewAuthCode, StoreError,
};
use crate::validate::storable;

/// How long an authorization code lives (RFC 6749 §4.1.2 recommends at most 10 minutes).
pub const CODE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// An authorization-endpoint error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown to the user: the client or its redirect URI cannot be trusted.
    Render { description: String },
    /// Sent to the client's redirect URI, with this server's issuer (RFC 9207 §2).
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
        iss: String,
    },
    /// The store failed.
    Server(String),
    /// The database is unavailable for now: shown to the user as 503, to try again.
    Unavailable(String),
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        match e.is_unavailable() {
            true => AuthorizeError::Unavailable(e.to_string()),
            false => AuthorizeError::Server(e.to_string()),
        }
    }
}

/// A validated authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub app: Application,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it).
    pub redirect_uri_given: bool,
    pub scopes: GrantSet,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    /// This server's issuer, returned with every response (RFC 9207 §2).
    pub iss: String,
}

type Pairs<'a> = &'a [(String, String)];

fn param<'a>(q: Pairs<'a>, name: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

fn render(d: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Render {
        description: d.into(),
    }
}

/// Step 1: the client must be named once and exist; nothing is looked up with a NUL.
async fn check_client(
    store: &dyn ClientStore,
    q: Pairs<'_>,
) -> Result<Application, AuthorizeError> {
    if q.iter().any(|(k, v)| !storable(k) || !storable(v)) {
        return Err(render("the request contains a NUL character"));
    }
    let ids: Vec<_> = q.iter().filter(|(k, _)| k == "client_id").collect();
    if ids.len() > 1 {
        return Err(render("client_id was sent more than once"));
    }
    let Some(id) = param(q, "client_id") else {
        return Err(render("the request names no client (client_id is missing)"));
    };
    store
        .application_by_client_id(id)
        .await?
        .ok_or_else(|| render(format!("Unable to find matching client for {id}")))
}

/// Step 2: the redirect URI (or its synonym `callback_uri`, which older clients send) must match a registered one
/// exactly (RFC 9700 §4.1.3); without one, the client's only registered URI is used.
fn check_redirect_uri(app: &Application, q: Pairs<'_>) -> Result<(String, bool), AuthorizeError> {
    let given: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "redirect_uri" || k == "callback_uri")
        .map(|(_, v)| v.as_str())
        .collect();
    match given.as_slice() {
        [] => match app.redirect_uris.as_slice() {
            [only] => Ok((only.clone(), false)),
            [] => Err(render(
                "this application has no registered redirect URI; its admin must add one",
            )),
            _ => Err(render(
                "redirect_uri is required: this application has several registered",
            )),
        },
        [uri] if app.redirect_uris.iter().any(|r| r == uri) => Ok((uri.to_string(), true)),
        [_] => Err(render(
            "the redirect_uri does not match any URI registered for this application",
        )),
        _ => Err(render(
            "send the redirect URI once (redirect_uri or callback_uri)",
        )),
    }
}

/// An error to send back on the trusted redirect URI: its RFC 6749 §4.1.2.1 code and
/// description.
type Refusal = (&'static str, String);

/// Parses and checks an authorization request, step by step; `issuer` is this server's
/// (`Settings::issuer`).
pub async fn validate(
    store: &dyn ClientStore,
    issuer: &str,
    q: Pairs<'_>,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let app = check_client(store, q).await?;
    let (redirect_uri, redirect_uri_given) = check_redirect_uri(&app, q)?;
    // From here on the redirect URI is trusted: errors go back to the client.
    let state = q.iter().find(|(k, _)| k == "state").map(|(_, v)| v.clone());
    let checked = check_unique(q)
        .and_then(|()| check_response_type(q))
        .and_then(|()| check_scope(&app, q))
        .and_then(|scopes| Ok((scopes, check_pkce(&app, q)?)));
    let (scopes, code_challenge) =
        checked.map_err(|(error, description)| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description,
            state: state.clone(),
            iss: issuer.to_string(),
        })?;
    Ok(AuthorizeRequest {
        app,
        redirect_uri,
        redirect_uri_given,
        scopes,
        state,
        code_challenge,
        iss: issuer.to_string(),
    })
}

/// Step 3 (RFC 6749 §3.1): no parameter sent twice.
fn check_unique(q: Pairs<'_>) -> Result<(), Refusal> {
    let mut seen = HashSet::new();
    match q.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        Some((k, _)) => Err((
            "invalid_request",
            format!("parameter {k} was sent more than once"),
        )),
        None => Ok(()),
    }
}

/// Step 4 (RFC 6749 §4.1.1): the code flow only.
fn check_response_type(q: Pairs<'_>) -> Result<(), Refusal> {
    match param(q, "response_type") {
        Some("code") => Ok(()),
        None => Err(("invalid_request", "response_type is required".into())),
        Some(other) => Err((
            "unsupported_response_type",
            format!("response_type {other} is not supported; use code"),
        )),
    }
}

/// Step 5 (RFC 6749 §3.3): known scopes the application may ask for; none asked means all
/// of them.
fn check_scope(app: &Application, q: Pairs<'_>) -> Result<GrantSet, Refusal> {
    let Some(s) = param(q, "scope") else {
        return Ok(app.scopes);
    };
    let asked = GrantSet::parse_scope(s)
        .map_err(|bad| ("invalid_scope", format!("unknown scope {bad}")))?;
    if asked.is_empty() || asked.intersect(app.scopes) != asked {
        return Err((
            "invalid_scope",
            format!("this application may ask for {}", app.scopes.to_scope()),
        ));
    }
    Ok(asked)
}

/// Step 6 (RFC 7636 §4.3, RFC 9700 §2.1.1): see [`pkce::check_challenge`].
fn check_pkce(app: &Application, q: Pairs<'_>) -> Result<Option<String>, Refusal> {
    let challenge = param(q, "code_challenge");
    let method = param(q, "code_challenge_method");
    pkce::check_challenge(challenge, method, app.public).map_err(|d| ("invalid_request", d))
}

/// Who may consent: a UI user of the application's org who is not disabled.
pub fn may_consent(req: &AuthorizeRequest, user: &User) -> bool {
    user.org_id == req.app.org_id && user.kind == UserKind::Ui && !user.disabled
}

/// The user allowed the request: mints a code bound to it and returns the redirect with
/// `code`, `state` (RFC 6749 §4.1.2) and `iss` (RFC 9207 §2).
pub async fn approve(
    store: &dyn AccountAccessStore,
    now: Timestamp,
    settings: &Settings,
    req: &AuthorizeRequest,
    user: &User,
) -> Result<String, AuthorizeError> {
    let code = credential::mint(Kind::AuthorizationCode, &settings.pod_id);
    store
        .create_auth_code(NewAuthCode {
            digest: code.digest,
            org_id: req.app.org_id,
            app_id: req.app.id,
            user_id: user.id,
            redirect_uri: req.redirect_uri.clone(),
            redirect_uri_given: req.redirect_uri_given,
            scopes: req.scopes,
            code_challenge: req.code_challenge.clone(),
            created_at: now,
            expires_at: now.plus(CODE_TTL),
        })
        .await?;
    let mut params = vec![("code", code.value.expose_secret().to_string())];
    if let Some(s) = &req.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", req.iss.clone()));
    Ok(with_query(&req.redirect_uri, &params))
}

/// The user denied the request: `error=access_denied` (RFC 6749 §4.1.2.1).
pub async fn deny(
    store: &dyn AuditStore,
    now: Timestamp,
    req: &AuthorizeRequest,
    user: &User,
) -> Result<String, AuthorizeError> {
    let audit = NewAudit::new(
        Some(req.app.org_id),
        now,
        user.username.clone(),
        "consent.denied",
        format!("application:{}", req.app.client_id),
    );
    store.record_audit(audit).await?;
    Ok(error_redirect(
        &req.redirect_uri,
        "access_denied",
        "the user denied the request",
        req.state.as_deref(),
        &req.iss,
    ))
}

/// The redirect carrying an error to the client, with `state` and `iss` (RFC 6749
/// §4.1.2.1, RFC 9207 §2).
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    iss: &str,
) -> String {
    let mut params = vec![
        ("error", error.to_string()),
        ("error_description", description.to_string()),
    ];
    if let Some(s) = state {
        params.push(("state", s.to_string()));
    }
    params.push(("iss", iss.to_string()));
    with_query(redirect_uri, &params)
}

/// Appends form-encoded parameters to a redirect URI, keeping its own query (RFC 6749
/// §3.1.2). The URI was registered as an absolute URI, so it parses.
pub(crate) fn with_query(uri: &str, params: &[(&str, String)]) -> String {
    let Ok(mut url) = url::Url::parse(uri) else {
        return uri.to_string();
    };
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirect_keeps_the_existing_query() {
        assert_eq!(
            error_redirect(
                "https://a.example/cb?x=1",
                "access_denied",
                "no",
                Some("s 1"),
                "https://as.example"
            ),
            "https://a.example/cb?x=1&error=access_denied&error_description=no&state=s+1\
             &iss=https%3A%2F%2Fas.example"
        );
    }
}
