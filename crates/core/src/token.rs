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
use crate::credential::Digest;
use crate::grant::GrantSet;
use crate::model::Application;
use crate::settings::Settings;
use crate::store::Store;

pub use crate::refresh_grant::reissue_rule;
pub(crate) use crate::refresh_grant::{granted_scopes, Minter};

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
            crate::refresh_grant::refresh(
                store,
                now,
                settings,
                &app,
                &refresh_token,
                scope.as_deref(),
            )
            .await
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
            crate::key_grant::key_token(store, now, settings, &req.client, scope.as_deref()).await
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
pub(crate) fn narrow_scope(granted: GrantSet, scope: Option<&str>) -> Result<GrantSet, OAuthError> {
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
