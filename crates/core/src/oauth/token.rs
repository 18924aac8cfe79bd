//! The token endpoint, `POST /oauth/token` (RFC 6749 §3.2, §5, §6; docs/architecture.md, token rules).
//!
//! The request is parsed into a [`TokenRequest`] whose [`GrantRequest`] variant holds exactly
//! the fields its grant needs, then [`exchange`] authenticates the client and runs the grant
//! (`grants/`).

use secrecy::{ExposeSecret, SecretString};

use super::client_auth::{authenticate_client, ClientAuth};
use super::grants::{authorization_code, client_credentials, refresh_token};
use super::{ErrorCode, OAuthError, Params};
use crate::clock::Timestamp;
use crate::limits::Attempt;
use crate::settings::Settings;
use crate::store::Store;

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
    /// The deprecated short-lived token path of API keys: `client_id` is an API user's Key ID
    /// and `client_secret` one of its secret keys.
    ClientCredentials { scope: Option<String> },
}

impl GrantRequest {
    /// The `grant_type` it came as.
    pub fn name(&self) -> &'static str {
        match self {
            GrantRequest::RefreshToken { .. } => "refresh_token",
            GrantRequest::AuthorizationCode { .. } => "authorization_code",
            GrantRequest::ClientCredentials { .. } => "client_credentials",
        }
    }
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
    /// The access token is the current one made again (a refresh inside the re-issue
    /// window), not a new one.
    pub reissued: bool,
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

fn required(params: &Params, name: &str) -> Result<SecretString, OAuthError> {
    params
        .get(name)
        .map(|v| v.to_string().into())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// The redirect URI of a code redemption, sent as `redirect_uri` or as its synonym
/// `callback_uri` (which the authorization endpoint accepts too), at most once.
fn redirect_uri(params: &Params) -> Result<Option<String>, OAuthError> {
    match (params.get("redirect_uri"), params.get("callback_uri")) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "send the redirect URI once (redirect_uri or callback_uri)",
        )),
        (uri, synonym) => Ok(uri.or(synonym).map(str::to_string)),
    }
}

impl TokenRequest {
    /// Reads the request from its parameters and the `Authorization` header.
    pub fn parse(params: &Params, authorization: Option<&str>) -> Result<Self, OAuthError> {
        let client = ClientAuth::from_request(params, authorization)?;
        let scope = || params.get("scope").map(str::to_string);
        let grant = match params.get("grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some("refresh_token") => GrantRequest::RefreshToken {
                refresh_token: required(params, "refresh_token")?,
                scope: scope(),
            },
            Some("authorization_code") => GrantRequest::AuthorizationCode {
                code: required(params, "code")?,
                redirect_uri: redirect_uri(params)?,
                code_verifier: params.get("code_verifier").map(str::to_string),
            },
            Some("client_credentials") => GrantRequest::ClientCredentials { scope: scope() },
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!(
                        "grant_type {other} is not supported; use authorization_code, refresh_token or client_credentials"
                    ),
                ))
            }
        };
        Ok(TokenRequest { client, grant })
    }
}

/// Runs a token request to its response at `now`.
pub async fn exchange(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    req: TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    match req.grant {
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            let app = authenticate_client(store, now, settings, attempt, &req.client).await?;
            let scope = scope.as_deref();
            refresh_token::refresh(store, now, settings, &app, &refresh_token, scope).await
        }
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let app = authenticate_client(store, now, settings, attempt, &req.client).await?;
            let redeem = authorization_code::CodeRedemption {
                code: &code,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_deref(),
            };
            authorization_code::redeem(store, now, settings, &app, redeem).await
        }
        GrantRequest::ClientCredentials { scope } => {
            let scope = scope.as_deref();
            client_credentials::key_token(store, now, settings, attempt, &req.client, scope).await
        }
    }
}
