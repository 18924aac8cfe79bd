//! The token endpoint, `POST /oauth/token` (RFC 6749 §3.2, §5, §6; DESIGN.md §2).
//!
//! The request is parsed into a [`TokenRequest`] whose [`GrantRequest`] variant holds exactly
//! the fields its grant needs, then [`exchange`] authenticates the client and runs the grant.

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::audit::NewAudit;
use crate::clock::{Clock, Timestamp};
use crate::credential::{self, Digest};
use crate::grant::GrantSet;
use crate::jwt::{self, active_key, ensure_keys, AccessClaims, TokenFormat};
use crate::model::Application;
use crate::settings::{ReissuePolicy, Settings};
use crate::store::{NewAccessToken, RefreshOutcome, Reissue, Store};

/// RFC 6749 §5.2 error codes (plus `slow_down` for the `reject` re-issue policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    SlowDown,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ServerError => "server_error",
        }
    }
}

/// A token-endpoint error (RFC 6749 §5.2). `cause` is for logs and never serialized.
#[derive(Clone, Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// The client tried HTTP Basic, so a 401 carries `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
    /// Seconds to wait, for `slow_down` (HTTP 429 + `Retry-After`).
    pub retry_after: Option<u64>,
    pub cause: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            cause: None,
        }
    }

    pub(crate) fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub(crate) fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn server(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request; try again",
        );
        e.cause = Some(cause.to_string());
        e
    }
}

impl From<crate::error::StoreError> for OAuthError {
    fn from(e: crate::error::StoreError) -> Self {
        OAuthError::server(e)
    }
}

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

/// The grant-specific part of a token request; each variant holds what its grant requires.
#[derive(Debug)]
pub enum GrantRequest {
    RefreshToken {
        refresh_token: SecretString,
        scope: Option<String>,
    },
    /// RFC 6749 §4.1.3, with the PKCE verifier of RFC 7636 §4.5.
    AuthorizationCode {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// The deprecated short-lived token path of seed 002: `client_id` is an API user's Key ID
    /// and `client_secret` one of its secret keys.
    ClientCredentials { scope: Option<String> },
}

/// A parsed token request.
#[derive(Debug)]
pub struct TokenRequest {
    pub client: ClientAuth,
    pub grant: GrantRequest,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: u64,
    pub scope: String,
    /// Issued on a deprecated path: the response carries `Deprecation` and `Link` headers.
    pub deprecated: bool,
}

impl TokenResponse {
    /// The response fields in order, for JSON or form encoding.
    pub fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut f = vec![
            ("access_token", self.access_token.expose_secret().into()),
            ("token_type", "bearer".into()),
        ];
        if let Some(r) = &self.refresh_token {
            f.push(("refresh_token", r.expose_secret().into()));
        }
        f.push(("expires_in", self.expires_in.into()));
        f.push(("scope", self.scope.clone().into()));
        f
    }
}

impl TokenRequest {
    /// Parses the form body and the `Authorization` header.
    ///
    /// RFC 6749 §3.2: parameters without a value are treated as omitted, and a parameter
    /// sent more than once is an `invalid_request`. §2.3: a client uses one authentication
    /// method per request.
    pub fn parse(
        form: &[(String, String)],
        authorization: Option<&str>,
    ) -> Result<Self, OAuthError> {
        let mut seen = HashSet::new();
        for (k, _) in form {
            if !seen.insert(k.as_str()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} was sent more than once"
                )));
            }
        }
        let get = |name: &str| {
            form.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let client = client_auth(get("client_id"), get("client_secret"), authorization)?;
        let basic = client.method == ClientAuthMethod::Basic;
        let with_challenge = |mut e: OAuthError| {
            e.basic_challenge = basic && e.code == ErrorCode::InvalidClient;
            e
        };
        let grant = match get("grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some("refresh_token") => GrantRequest::RefreshToken {
                refresh_token: get("refresh_token")
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?
                    .to_string()
                    .into(),
                scope: get("scope").map(str::to_string),
            },
            Some("authorization_code") => GrantRequest::AuthorizationCode {
                code: get("code")
                    .ok_or_else(|| OAuthError::invalid_request("code is required"))?
                    .to_string()
                    .into(),
                redirect_uri: get("redirect_uri").map(str::to_string),
                code_verifier: get("code_verifier").map(str::to_string),
            },
            Some("client_credentials") => GrantRequest::ClientCredentials {
                scope: get("scope").map(str::to_string),
            },
            Some(other) => {
                return Err(with_challenge(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!(
                    "grant_type {other} is not supported; use authorization_code, refresh_token or client_credentials"
                ),
                )))
            }
        };
        Ok(TokenRequest { client, grant })
    }
}

/// Reads the client's credentials from the body or from HTTP Basic (RFC 6749 §2.3.1, where
/// both parts are form-urlencoded before base64).
pub(crate) fn client_auth(
    id: Option<&str>,
    secret: Option<&str>,
    authorization: Option<&str>,
) -> Result<ClientAuth, OAuthError> {
    let basic = authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    });
    match (basic, id, secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "the client authenticated twice (HTTP Basic and client_secret); use one",
        )),
        (Some(b64), body_id, None) => {
            let mut e = OAuthError::new(
                ErrorCode::InvalidClient,
                "the HTTP Basic credentials are malformed",
            );
            e.basic_challenge = true;
            let raw = STANDARD.decode(b64).map_err(|_| e.clone())?;
            let raw = String::from_utf8(raw).map_err(|_| e.clone())?;
            let (u, p) = raw.split_once(':').ok_or_else(|| e.clone())?;
            let decode = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let (client_id, secret) = (decode(u), decode(p));
            if client_id.is_empty() {
                return Err(e);
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
        (None, Some(id), secret) => Ok(ClientAuth {
            client_id: id.to_string(),
            secret: secret.map(|s| s.to_string().into()),
            method: if secret.is_some() {
                ClientAuthMethod::Post
            } else {
                ClientAuthMethod::None
            },
        }),
        (None, None, _) => Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "client authentication is required: send client_id and client_secret in the body or with HTTP Basic",
        )),
    }
}

/// Authenticates the client against its stored secret digests, in constant time.
pub async fn authenticate_client(
    store: &dyn Store,
    now: Timestamp,
    client: &ClientAuth,
) -> Result<Application, OAuthError> {
    let basic = client.method == ClientAuthMethod::Basic;
    let fail = |d: String| {
        let mut e = OAuthError::new(ErrorCode::InvalidClient, d);
        e.basic_challenge = basic;
        e
    };
    let Some(app) = store.application_by_client_id(&client.client_id).await? else {
        return Err(fail(format!(
            "Unable to find matching client for {}",
            client.client_id
        )));
    };
    match (&client.secret, app.public) {
        (None, true) => Ok(app),
        (None, false) => Err(fail("client_secret is required for this client".into())),
        (Some(_), true) => Err(fail(
            "this client is public and has no secret; send only client_id".into(),
        )),
        (Some(secret), false) => {
            let presented = Digest::of(secret.expose_secret());
            let valid = store.client_secrets(app.id, now).await?;
            // Check every valid secret so the time taken does not say which one matched.
            let ok = valid
                .iter()
                .fold(false, |acc, d| d.matches(&presented) | acc);
            if ok {
                Ok(app)
            } else {
                let target = format!("application:{}", app.client_id);
                let audit = NewAudit::auth_failed(
                    app.org_id,
                    now,
                    &app.client_id,
                    target,
                    "wrong client_secret",
                );
                store.record_audit(audit).await?;
                Err(fail(
                    "client authentication failed: wrong client_secret".into(),
                ))
            }
        }
    }
}

/// Runs a token request to its response.
pub async fn exchange(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &Settings,
    req: TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let now = clock.now();
    match req.grant {
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            let app = authenticate_client(store, now, &req.client).await?;
            refresh(store, now, settings, &app, &refresh_token, scope.as_deref()).await
        }
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let app = authenticate_client(store, now, &req.client).await?;
            let redeem = CodeRedemption {
                code: &code,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_deref(),
            };
            crate::code_grant::redeem(store, now, settings, &app, redeem).await
        }
        GrantRequest::ClientCredentials { scope } => {
            key_token(store, now, settings, &req.client, scope.as_deref()).await
        }
    }
}

/// The token request's part of the authorization-code grant.
pub struct CodeRedemption<'a> {
    pub code: &'a SecretString,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// Parses a requested scope and checks it against what is granted; `None` means all of it.
fn narrow_scope(granted: GrantSet, scope: Option<&str>) -> Result<GrantSet, OAuthError> {
    let Some(s) = scope else {
        return Ok(granted);
    };
    let asked = GrantSet::parse_scope(s)
        .map_err(|bad| OAuthError::new(ErrorCode::InvalidScope, format!("unknown scope {bad}")))?;
    if asked.intersect(granted) != asked {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "the requested scope exceeds what is granted ({})",
                granted.to_scope()
            ),
        ));
    }
    Ok(asked)
}

/// `client_credentials` with an API user's Key ID and secret key (seed 002's deprecated
/// "regularly refreshed short-lived tokens"): a bearer token living `api_keys.token_ttl`,
/// carrying the user's grants, that stops with the key or the user.
async fn key_token(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    client: &ClientAuth,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let fail = |d: String| {
        let mut e = OAuthError::new(ErrorCode::InvalidClient, d);
        e.basic_challenge = client.method == ClientAuthMethod::Basic;
        e
    };
    let Some(secret) = &client.secret else {
        return Err(fail(
            "client_credentials needs the Key ID as client_id and a secret key as client_secret"
                .into(),
        ));
    };
    let owner = crate::authn::KeyOwner::KeyId(&client.client_id);
    let (key, user) = match crate::authn::check_key(store, now, settings, owner, secret).await? {
        Ok(found) => found,
        Err(crate::authn::KeyRefusal::Unknown) => {
            if store
                .application_by_client_id(&client.client_id)
                .await?
                .is_some()
            {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "applications do not use client_credentials: trade a refresh token with grant_type=refresh_token",
                ));
            }
            return Err(fail(format!(
                "Unable to find matching client for {}",
                client.client_id
            )));
        }
        Err(r) => return Err(fail(r.describe())),
    };
    let scopes = narrow_scope(user.effective_grants(), scope)?;
    let minted = credential::mint(credential::Kind::AccessToken, &settings.pod_id);
    let token = NewAccessToken {
        digest: minted.digest,
        nonce: Vec::new(),
        scopes,
        issued_at: now,
        expires_at: now.plus(settings.api_keys.token_ttl),
        kid: None,
    };
    let audit = NewAudit::new(
        Some(user.org_id),
        now,
        user.username.clone(),
        "access_token.issued",
        format!("user:{}", user.username),
    )
    .with_detail(
        serde_json::json!({"grant_type": "client_credentials", "scope": scopes.to_scope()}),
    );
    store
        .issue_key_token(&key, &user, token.clone(), audit)
        .await?;
    Ok(TokenResponse {
        access_token: minted.value,
        refresh_token: None,
        expires_in: now.whole_seconds_until(token.expires_at),
        scope: scopes.to_scope(),
        deprecated: true,
    })
}

/// The re-issue rule of DESIGN.md §2: a new token only once the newest has been valid for
/// `reissue_after`; before that, the same token (`reuse`) or a refusal (`reject`).
pub fn reissue_rule(
    newest: Option<&crate::model::AccessTokenRecord>,
    now: Timestamp,
    settings: &Settings,
) -> Reissue {
    let Some(t) = newest else {
        return Reissue::Issue;
    };
    let window_ends = t.issued_at.plus(settings.tokens.reissue_after);
    if now >= window_ends || now >= t.expires_at {
        return Reissue::Issue;
    }
    match settings.tokens.reissue_policy {
        ReissuePolicy::Reuse => Reissue::Reuse,
        ReissuePolicy::Reject => Reissue::Reject {
            retry_at: window_ends,
        },
    }
}

async fn refresh(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    refresh_token: &SecretString,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = refresh_token.expose_secret();
    if let Some(shape) = credential::shape(presented) {
        if shape.pod != settings.pod_id {
            return Err(OAuthError::invalid_grant(format!(
                "this refresh token belongs to pod {}; send it to that pod's API host",
                shape.pod
            )));
        }
    }
    let Some(rt) = store.refresh_token(&Digest::of(presented)).await? else {
        refused(store, now, app, "unknown or revoked refresh token").await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown or its account access was deleted",
        ));
    };
    if rt.access.app_id != app.id {
        refused(store, now, app, "refresh token of another application").await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was not issued to this client",
        ));
    }
    let access = &rt.access;
    let granted = granted_scopes(store, app, access.user_id)
        .await?
        .intersect(access.scopes)
        .intersect(rt.scopes);
    let scopes = narrow_scope(granted, scope)?;
    if app.rotate_refresh_tokens {
        return rotate(store, now, settings, app, presented, &rt, scopes).await;
    }
    let issue = Issue {
        refresh_id: rt.id,
        org: access.org_id,
        grant_type: "refresh_token",
        scopes,
        user: access.user_id,
        replay: false,
    };
    issue_from_refresh(store, now, settings, app, presented, issue).await
}

/// Refresh under rotation (RFC 9700 §4.14.2): the token is exchanged for its successor. A
/// rotated token presented again inside `tokens.rotation_grace` gets the same answer (the
/// response was lost); later, it is taken as stolen and its whole family is revoked.
async fn rotate(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    presented: &str,
    rt: &crate::store::RefreshTokenRecord,
    scopes: GrantSet,
) -> Result<TokenResponse, OAuthError> {
    let issue = |refresh_id, replay| Issue {
        refresh_id,
        org: rt.access.org_id,
        grant_type: "refresh_token",
        scopes,
        user: rt.access.user_id,
        replay,
    };
    let mut rotated_at = rt.rotated_at;
    if rotated_at.is_none() {
        let nonce = credential::nonce();
        let next = credential::derive_refresh_token(&settings.pod_id, presented, &nonce);
        match store
            .rotate_refresh_token(rt.id, next.digest, nonce.to_vec(), now)
            .await?
        {
            Some(id) => {
                let value = next.value.expose_secret().to_string();
                return issue_from_refresh(store, now, settings, app, &value, issue(id, false))
                    .await;
            }
            // Rotated by a concurrent request a moment ago.
            None => rotated_at = Some(now),
        }
    }
    if rotated_at.is_some_and(|t| now < t.plus(settings.tokens.rotation_grace)) {
        if let Some((id, nonce)) = store.refresh_successor(rt.id).await? {
            let next = credential::derive_refresh_token(&settings.pod_id, presented, &nonce);
            let value = next.value.expose_secret().to_string();
            return issue_from_refresh(store, now, settings, app, &value, issue(id, true)).await;
        }
    }
    let audit = NewAudit::auth_failed(
        rt.access.org_id,
        now,
        &app.client_id,
        format!("application:{}", app.client_id),
        "rotated refresh token reused; its family was revoked",
    );
    store
        .revoke_refresh_family(rt.family_id, now, audit)
        .await?;
    Err(OAuthError::invalid_grant(
        "this refresh token was already used; as a precaution every token issued from it has been revoked: authorize again",
    ))
}

/// Makes the access tokens of one refresh token: derived from it (opaque) or signed JWTs
/// whose `jti` is derived from it (RFC 9068 applications).
pub(crate) struct Minter<'a> {
    keys: Vec<jwt::SigningKey>,
    settings: &'a Settings,
    app: &'a Application,
    refresh_token: &'a str,
    user: crate::model::UserId,
}

impl<'a> Minter<'a> {
    pub(crate) async fn new(
        store: &dyn Store,
        now: Timestamp,
        settings: &'a Settings,
        app: &'a Application,
        refresh_token: &'a str,
        user: crate::model::UserId,
    ) -> Result<Minter<'a>, OAuthError> {
        let keys = match app.token_format {
            TokenFormat::Jwt => ensure_keys(store, now, settings.tokens.key_rotation).await?,
            TokenFormat::Opaque => Vec::new(),
        };
        Ok(Minter {
            keys,
            settings,
            app,
            refresh_token,
            user,
        })
    }

    /// The token for these facts; the same facts always give the same token.
    pub(crate) fn make(
        &self,
        nonce: &[u8],
        kid: Option<&str>,
        scopes: GrantSet,
        iat: Timestamp,
        exp: Timestamp,
    ) -> Result<credential::Minted, OAuthError> {
        match kid.and_then(|kid| self.keys.iter().find(|k| k.kid == kid)) {
            None => Ok(credential::derive_access_token(
                &self.settings.pod_id,
                self.refresh_token,
                nonce,
            )),
            Some(key) => {
                let claims = AccessClaims {
                    issuer: &self.settings.public_url,
                    audience: &self.settings.public_url,
                    subject: self.user.to_string(),
                    client_id: &self.app.client_id,
                    scopes,
                    issued_at: iat,
                    expires_at: exp,
                };
                jwt::access_token(key, &claims, self.refresh_token, nonce)
                    .map_err(OAuthError::server)
            }
        }
    }

    /// A new access token issued at `now`: its value and what to store.
    pub(crate) fn fresh(
        &self,
        now: Timestamp,
        scopes: GrantSet,
    ) -> Result<(credential::Minted, NewAccessToken), OAuthError> {
        let nonce = credential::nonce();
        let expires_at = now.plus(self.settings.tokens.access_ttl);
        let kid = active_key(&self.keys, now).map(|k| k.kid.clone());
        let value = self.make(&nonce, kid.as_deref(), scopes, now, expires_at)?;
        let record = NewAccessToken {
            digest: value.digest,
            nonce: nonce.to_vec(),
            scopes,
            issued_at: now,
            expires_at,
            kid,
        };
        Ok((value, record))
    }
}

/// What [`issue_from_refresh`] issues under.
pub(crate) struct Issue {
    pub refresh_id: i64,
    pub org: crate::model::OrgId,
    pub grant_type: &'static str,
    pub scopes: GrantSet,
    /// The resource owner (the JWT `sub`).
    pub user: crate::model::UserId,
    /// Answering a replay of a lost response: hand back the newest token whatever the policy.
    pub replay: bool,
}

/// Issues (or, inside the re-issue window, returns again) the access token derived from a
/// refresh token, and answers with both (DESIGN.md §2).
pub(crate) async fn issue_from_refresh(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    refresh_token: &str,
    issue: Issue,
) -> Result<TokenResponse, OAuthError> {
    let minter = Minter::new(store, now, settings, app, refresh_token, issue.user).await?;
    let (fresh_value, fresh) = minter.fresh(now, issue.scopes)?;
    let audit = NewAudit::new(
        Some(issue.org),
        now,
        app.client_id.clone(),
        "access_token.issued",
        format!("application:{}", app.client_id),
    )
    .with_detail(
        serde_json::json!({"grant_type": issue.grant_type, "scope": issue.scopes.to_scope()}),
    );
    let decide = |newest: Option<&crate::model::AccessTokenRecord>| match newest {
        Some(_) if issue.replay => Reissue::Reuse,
        _ => reissue_rule(newest, now, settings),
    };
    let outcome = store
        .refresh_access_token(issue.refresh_id, &decide, fresh, audit)
        .await?;
    let (record, value) = match outcome {
        RefreshOutcome::Issued(r) => (r, fresh_value.value),
        RefreshOutcome::Reused(r) => {
            let v = minter.make(
                &r.nonce,
                r.kid.as_deref(),
                r.scopes,
                r.issued_at,
                r.expires_at,
            )?;
            (r, v.value)
        }
        RefreshOutcome::Rejected { retry_at } => {
            let wait = now.seconds_until_ceil(retry_at);
            let mut e = OAuthError::new(
                ErrorCode::SlowDown,
                format!(
                    "a new access token can be issued from {} (in {wait} s); keep using the current one until then",
                    retry_at.to_rfc3339()
                ),
            );
            e.retry_after = Some(wait);
            return Err(e);
        }
        RefreshOutcome::Revoked => {
            return Err(OAuthError::invalid_grant("the account access was deleted"))
        }
    };
    Ok(TokenResponse {
        access_token: value,
        refresh_token: Some(refresh_token.to_string().into()),
        expires_in: now.whole_seconds_until(record.expires_at),
        scope: record.scopes.to_scope(),
        deprecated: false,
    })
}

/// Records a refused refresh by an authenticated client.
async fn refused(
    store: &dyn Store,
    now: Timestamp,
    app: &Application,
    reason: &str,
) -> Result<(), OAuthError> {
    let target = format!("application:{}", app.client_id);
    let audit = NewAudit::auth_failed(app.org_id, now, &app.client_id, target, reason);
    Ok(store.record_audit(audit).await?)
}

/// What an account access grants: the application's scopes intersected with the user's
/// grants. `invalid_grant` if the user is disabled or gone.
pub(crate) async fn granted_scopes(
    store: &dyn Store,
    app: &Application,
    user_id: crate::model::UserId,
) -> Result<GrantSet, OAuthError> {
    match store.user_by_id(user_id).await? {
        Some(u) if !u.disabled => Ok(app.scopes.intersect(u.effective_grants())),
        Some(_) => Err(OAuthError::invalid_grant(
            "the user of this account access is disabled",
        )),
        None => Err(OAuthError::invalid_grant(
            "the user of this account access no longer exists",
        )),
    }
}
