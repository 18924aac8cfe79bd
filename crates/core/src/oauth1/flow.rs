//! The three legs of RFC 5849 §2: temporary credentials (`POST /oauth1/request_token`), the
//! resource owner's authorization (`GET /oauth1/authorize`, the sign-in and consent pages of
//! the web-server flow) and token credentials (`POST /oauth1/access_token`), which belong to
//! the account access the consent creates or extends (docs/architecture.md, OAuth 1.0a).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;

use super::error::{OAuth1Error, Problem};
use super::request::{self, SignedRequest, TokenUse, VerifiedToken};
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::limits::Attempt;
use crate::model::{Application, User, UserKind};
use crate::oauth::authorize::with_query;
use crate::permissions::GrantSet;
use crate::settings::Settings;
use crate::store::{Exchange, NewAudit, NewRequestToken, RequestTokenRecord, Store, StoreError};

/// How long temporary credentials live before they are exchanged.
pub const REQUEST_TOKEN_TTL: Duration = Duration::from_secs(600);

/// The callback of a client that cannot receive one: the page shows the verifier (§2.1).
pub const OUT_OF_BAND: &str = "oob";

/// A token and its shared secret, as the endpoints answer them (§2.1, §2.3).
pub struct Credentials {
    pub token: String,
    pub secret: String,
}

/// `POST /oauth1/request_token` (§2.1): the consumer signs with its client secret and names
/// its callback, one of its registered redirect URIs or `oob`; an optional `scope`
/// (space-separated grants) narrows what it asks for, as in OAuth 2.0.
pub async fn request_token(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    req: &SignedRequest<'_>,
) -> Result<Credentials, OAuth1Error> {
    let (verified, params) =
        request::verify(store, now, settings, attempt, req, TokenUse::None).await?;
    let app = verified.app;
    let callback = params
        .get("oauth_callback")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            OAuth1Error::new(
            Problem::ParameterAbsent,
            "oauth_callback is required: one of the application's registered redirect URIs, or oob",
        )
        })?;
    if callback != OUT_OF_BAND && !app.redirect_uris.iter().any(|r| r == callback) {
        return Err(OAuth1Error::new(
            Problem::ParameterRejected,
            "oauth_callback must be one of the application's registered redirect URIs, or oob",
        ));
    }
    let scopes = match params.get("scope") {
        None | Some("") => app.scopes,
        Some(s) => {
            let asked = GrantSet::parse_scope(s).map_err(|bad| {
                OAuth1Error::new(Problem::ParameterRejected, format!("unknown scope {bad}"))
            })?;
            if asked.intersect(app.scopes) != asked {
                return Err(OAuth1Error::new(
                    Problem::ParameterRejected,
                    format!("this application may ask for {}", app.scopes.to_scope()),
                ));
            }
            asked
        }
    };
    let key = request::key_of(settings)?;
    let token = credential::mint(Kind::RequestToken, &settings.pod_id);
    store
        .create_request_token(NewRequestToken {
            digest: token.digest,
            app_id: app.id,
            callback: callback.to_string(),
            scopes,
            created_at: now,
            expires_at: now.plus(REQUEST_TOKEN_TTL),
        })
        .await?;
    let token = token.value.expose_secret().to_string();
    let secret = key.token_secret(&token);
    Ok(Credentials { token, secret })
}

/// Temporary credentials waiting for the resource owner's decision.
#[derive(Debug)]
pub struct Pending {
    pub record: RequestTokenRecord,
    pub digest: Digest,
    pub token: String,
}

impl Pending {
    pub fn app(&self) -> &Application {
        &self.record.app
    }
}

/// The page's view of `oauth_token` (§2.2): live temporary credentials not yet authorized;
/// `Err` is the sentence shown to the user.
pub async fn pending(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    query: &[(String, String)],
) -> Result<Pending, AuthorizePageError> {
    let tokens: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "oauth_token")
        .map(|(_, v)| v.as_str())
        .collect();
    let token = match tokens.as_slice() {
        [t] if !t.is_empty() => *t,
        [] | [_] => {
            return Err(AuthorizePageError::Render(
                "the request names no oauth_token; go back to the application and start again"
                    .into(),
            ))
        }
        _ => {
            return Err(AuthorizePageError::Render(
                "oauth_token was sent more than once".into(),
            ))
        }
    };
    let gone = || {
        AuthorizePageError::Render(
        "this authorization request is unknown, expired or already answered; go back to the application and start again".into(),
    )
    };
    if let Some(pod) = credential::foreign_pod(settings, token) {
        return Err(AuthorizePageError::Render(format!(
            "this authorization request was started at {pod}; the application must send you to that pod's authorization page"
        )));
    }
    match credential::shape(token) {
        Some(s) if s.kind == Kind::RequestToken => {}
        _ => return Err(gone()),
    }
    let digest = Digest::of(token);
    let record = store.request_token(&digest).await?.ok_or_else(gone)?;
    if !record.live(now) || record.authorized.is_some() {
        return Err(gone());
    }
    Ok(Pending {
        record,
        digest,
        token: token.to_string(),
    })
}

/// Why the authorization page cannot go on.
#[derive(Debug)]
pub enum AuthorizePageError {
    /// Shown to the user.
    Render(String),
    Server(StoreError),
}

impl From<StoreError> for AuthorizePageError {
    fn from(e: StoreError) -> Self {
        AuthorizePageError::Server(e)
    }
}

/// Who may authorize: a UI user of the application's org who is not disabled.
pub fn may_authorize(p: &Pending, user: &User) -> bool {
    user.org_id == p.record.app.org_id && user.kind == UserKind::Ui && !user.disabled
}

/// What the page does after the user allowed it (§2.2).
#[derive(Debug, PartialEq, Eq)]
pub enum Approved {
    /// Redirect to the callback with `oauth_token` and `oauth_verifier`.
    Redirect(String),
    /// `oob`: show the verifier for the user to type into the application.
    ShowVerifier(String),
}

/// The user allowed the request: a verifier is made and recorded with the user.
pub async fn approve(
    store: &dyn Store,
    now: Timestamp,
    p: &Pending,
    user: &User,
) -> Result<Approved, AuthorizePageError> {
    let verifier = URL_SAFE_NO_PAD.encode(credential::random_bytes::<16>());
    let audit = NewAudit::new(
        Some(p.record.app.org_id),
        now,
        user.username.clone(),
        "consent.granted",
        format!("application:{}", p.record.app.client_id),
    )
    .with_detail(serde_json::json!({"protocol": "oauth1", "scopes": p.record.scopes.names()}));
    let recorded = store
        .authorize_request_token(&p.digest, user.id, Digest::of(&verifier), now, audit)
        .await?;
    if !recorded {
        return Err(AuthorizePageError::Render(
            "this authorization request expired or was already answered; go back to the application and start again".into(),
        ));
    }
    if p.record.callback == OUT_OF_BAND {
        return Ok(Approved::ShowVerifier(verifier));
    }
    Ok(Approved::Redirect(with_query(
        &p.record.callback,
        &[
            ("oauth_token", p.token.clone()),
            ("oauth_verifier", verifier),
        ],
    )))
}

/// The user denied the request: the callback learns it (`oauth_problem=permission_denied`);
/// `None` for `oob`, where the page says so.
pub async fn deny(
    store: &dyn Store,
    now: Timestamp,
    p: &Pending,
    user: &User,
) -> Result<Option<String>, AuthorizePageError> {
    let audit = NewAudit::new(
        Some(p.record.app.org_id),
        now,
        user.username.clone(),
        "consent.denied",
        format!("application:{}", p.record.app.client_id),
    );
    store.record_audit(audit).await?;
    if p.record.callback == OUT_OF_BAND {
        return Ok(None);
    }
    Ok(Some(with_query(
        &p.record.callback,
        &[
            ("oauth_token", p.token.clone()),
            ("oauth_problem", "permission_denied".into()),
        ],
    )))
}

/// `POST /oauth1/access_token` (§2.3): signed with the client secret and the temporary
/// credentials' secret, with the verifier the user was given; the temporary credentials are
/// spent, and token credentials issued under the account access.
pub async fn access_token(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    req: &SignedRequest<'_>,
) -> Result<Credentials, OAuth1Error> {
    let (verified, params) =
        request::verify(store, now, settings, attempt, req, TokenUse::Request).await?;
    let VerifiedToken::Request(record, digest) = verified.token else {
        return Err(OAuth1Error::new(
            Problem::TokenRejected,
            "oauth_token is unknown",
        ));
    };
    let verifier = params.required("oauth_verifier")?;
    let Some((user_id, expected)) = record.authorized else {
        return Err(OAuth1Error::new(
            Problem::TokenRejected,
            "the user has not authorized these temporary credentials yet: send them to GET /oauth1/authorize first",
        ));
    };
    if !expected.matches(&Digest::of(verifier)) {
        return Err(OAuth1Error::new(
            Problem::VerifierInvalid,
            "oauth_verifier does not match the one the user was given",
        ));
    }
    let app = verified.app;
    let username = store
        .user_by_id(user_id)
        .await?
        .map_or_else(|| user_id.to_string(), |u| u.username);
    let key = request::key_of(settings)?;
    let token = credential::mint(Kind::OAuth1Token, &settings.pod_id);
    let audit = NewAudit::new(
        Some(app.org_id),
        now,
        app.client_id.clone(),
        "oauth1_token.issued",
        format!("user:{username}"),
    )
    .with_detail(serde_json::json!({"scopes": record.scopes.names()}));
    match store
        .exchange_request_token(&digest, app.id, now, token.digest, audit)
        .await?
    {
        Exchange::Issued { .. } => {}
        Exchange::Refused => {
            return Err(OAuth1Error::new(
                Problem::TokenRejected,
                "the temporary credentials expired or were already exchanged; start again at POST /oauth1/request_token",
            ))
        }
    }
    let token = token.value.expose_secret().to_string();
    let secret = key.token_secret(&token);
    Ok(Credentials { token, secret })
}
