//! Resolving a protected request's credential to one [`Principal`] (DESIGN.md §3), and the
//! RFC 6750 errors when that fails.

use secrecy::{ExposeSecret, SecretString};

use crate::apikey;
use crate::audit::NewAudit;
use crate::clock::{Clock, Timestamp};
use crate::credential::{self, Digest, Kind};
use crate::grant::{Grant, GrantSet};
use crate::model::{AppId, OrgId, User, UserId, UserKind};
use crate::settings::Settings;
use crate::store::{Store, TokenRefusal};

/// RFC 6750 §3.1 error codes; `None` when the request carried no credential at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerErrorCode {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    /// A storage failure; never a client's fault.
    ServerError,
}

impl BearerErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            BearerErrorCode::InvalidRequest => "invalid_request",
            BearerErrorCode::InvalidToken => "invalid_token",
            BearerErrorCode::InsufficientScope => "insufficient_scope",
            BearerErrorCode::ServerError => "server_error",
        }
    }
}

/// Why a protected request was refused (RFC 6750 §3). `cause` is never serialized.
#[derive(Clone, Debug)]
pub struct BearerError {
    /// `None`: no credential was sent (RFC 6750 §3.1: no error code in the challenge).
    pub code: Option<BearerErrorCode>,
    pub description: String,
    /// For `insufficient_scope`: the grant that was missing.
    pub scope: Option<Grant>,
    pub cause: Option<String>,
}

impl BearerError {
    fn invalid_token(d: impl Into<String>) -> Self {
        BearerError {
            code: Some(BearerErrorCode::InvalidToken),
            description: d.into(),
            scope: None,
            cause: None,
        }
    }

    pub fn insufficient_scope(g: Grant) -> Self {
        BearerError {
            code: Some(BearerErrorCode::InsufficientScope),
            description: format!(
                "this call needs the {g} grant, which the credential does not carry"
            ),
            scope: Some(g),
            cause: None,
        }
    }

    pub fn status(&self) -> u16 {
        match self.code {
            None | Some(BearerErrorCode::InvalidToken) => 401,
            Some(BearerErrorCode::InvalidRequest) => 400,
            Some(BearerErrorCode::InsufficientScope) => 403,
            Some(BearerErrorCode::ServerError) => 500,
        }
    }
}

impl From<crate::error::StoreError> for BearerError {
    fn from(e: crate::error::StoreError) -> Self {
        BearerError {
            code: Some(BearerErrorCode::ServerError),
            description: "the server could not check the credential; try again".into(),
            scope: None,
            cause: Some(e.to_string()),
        }
    }
}

/// How a principal authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// An OAuth 2.0 access token.
    AccessToken,
    /// An API secret key used directly: `Bearer base64(<key id>:<secret key>)`.
    ApiKey,
    /// HTTP Basic with an API user's username and secret key.
    Basic,
}

/// Who is calling: one org, one user, optionally an application, and the grants in force now.
#[derive(Clone, Debug)]
pub struct Principal {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub username: String,
    pub user_kind: UserKind,
    pub app_id: Option<AppId>,
    pub client_id: Option<String>,
    /// Effective grants, as of now: for access tokens the token's scope ∩ the application's
    /// scopes ∩ the user's grants; for secret keys the API user's grants.
    pub grants: GrantSet,
    pub method: AuthMethod,
}

impl Principal {
    /// `insufficient_scope` naming `g` unless the principal holds it.
    pub fn require(&self, g: Grant) -> Result<(), BearerError> {
        if self.grants.contains(g) {
            Ok(())
        } else {
            Err(BearerError::insufficient_scope(g))
        }
    }

    fn of_user(user: User, grants: GrantSet, method: AuthMethod) -> Principal {
        Principal {
            org_id: user.org_id,
            user_id: user.id,
            username: user.username,
            user_kind: user.kind,
            app_id: None,
            client_id: None,
            grants,
            method,
        }
    }
}

const BASIC_HELP: &str = "the username or secret key is wrong: HTTP Basic takes an API user's username and one of its secret keys; \
    a UI user's password never opens an API: use an access token from an application \
    (POST /oauth/token) or an API user's secret key";

/// Resolves the `Authorization` header of a protected request (DESIGN.md §3).
pub async fn authenticate(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &Settings,
    authorization: Option<&str>,
) -> Result<Principal, BearerError> {
    let Some(header) = authorization else {
        return Err(BearerError {
            code: None,
            description:
                "this API needs a credential: send Authorization: Bearer <access token or API key>"
                    .into(),
            scope: None,
            cause: None,
        });
    };
    let (scheme, value) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let value = value.trim();
    let now = clock.now();
    if scheme.eq_ignore_ascii_case("basic") {
        let (username, secret) =
            apikey::parse_basic(value).ok_or_else(|| BearerError::invalid_token(BASIC_HELP))?;
        return key_principal(
            store,
            now,
            settings,
            KeyOwner::Username(&username),
            &secret,
            AuthMethod::Basic,
        )
        .await;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::invalid_token(format!(
            "the {scheme} scheme is not accepted here: send Authorization: Bearer <access token or API key>"
        )));
    }
    if value.is_empty() {
        return Err(BearerError::invalid_token("the Bearer credential is empty"));
    }
    match credential::shape(value) {
        Some(shape) if shape.pod != settings.pod_id => Err(BearerError::invalid_token(format!(
            "this credential belongs to pod {}; call that pod's API host",
            shape.pod
        ))),
        Some(shape) if shape.kind == Kind::RefreshToken => Err(BearerError::invalid_token(
            "this is a refresh token: trade it for an access token at POST /oauth/token",
        )),
        Some(shape) if shape.kind == Kind::AccessToken => {
            access_token_principal(store, now, value).await
        }
        None if crate::jwt::looks_like_jwt(value) => {
            access_token_principal(store, now, value).await
        }
        _ => match apikey::parse_bearer(value) {
            Some((key_id, secret)) => {
                key_principal(
                    store,
                    now,
                    settings,
                    KeyOwner::KeyId(&key_id),
                    &secret,
                    AuthMethod::ApiKey,
                )
                .await
            }
            None => Err(BearerError::invalid_token("the access token is unknown")),
        },
    }
}

async fn access_token_principal(
    store: &dyn Store,
    now: Timestamp,
    token: &str,
) -> Result<Principal, BearerError> {
    let digest = Digest::of(token);
    let Some(rec) = store.access_token(&digest).await? else {
        return Err(BearerError::invalid_token("the access token is unknown"));
    };
    let refusal = rec.refusal(now).map(|r| {
        let description = match r {
            TokenRefusal::Revoked => {
                "the access token has been revoked; its account access was deleted".to_string()
            }
            TokenRefusal::Expired => format!(
                "the access token expired at {}; get a new one from POST /oauth/token",
                rec.expires_at.to_rfc3339()
            ),
            TokenRefusal::KeyDeleted => {
                "the secret key this access token was obtained with has been deleted".to_string()
            }
            TokenRefusal::UserDisabled => "the user of this token is disabled".to_string(),
        };
        (r.reason(), description)
    });
    if let Some((reason, description)) = refusal {
        let actor = rec
            .app
            .as_ref()
            .map_or(rec.user.username.as_str(), |a| a.client_id.as_str());
        let audit = NewAudit::auth_failed(
            rec.user.org_id,
            now,
            actor,
            format!("user:{}", rec.user.username),
            reason,
        )
        .with_detail(serde_json::json!({"reason": reason, "token": rec.token_id}));
        store.record_audit(audit).await?;
        return Err(BearerError::invalid_token(description));
    }
    let grants = rec.grants();
    if !rec.first_used {
        let audit = NewAudit::new(
            Some(rec.user.org_id),
            now,
            rec.app
                .as_ref()
                .map(|a| a.client_id.clone())
                .unwrap_or_else(|| rec.user.username.clone()),
            "access_token.first_used",
            format!("user:{}", rec.user.username),
        )
        .with_detail(serde_json::json!({"token": rec.token_id}));
        store
            .mark_access_token_used(&digest, rec.token_id, audit)
            .await?;
    }
    let mut p = Principal::of_user(rec.user, grants, AuthMethod::AccessToken);
    p.app_id = rec.app.as_ref().map(|a| a.id);
    p.client_id = rec.app.map(|a| a.client_id);
    Ok(p)
}

/// How the caller named the API user a secret key belongs to.
pub enum KeyOwner<'a> {
    KeyId(&'a str),
    Username(&'a str),
}

/// Why a secret key was refused, for the token endpoint and the APIs to phrase alike.
#[derive(Debug)]
pub enum KeyRefusal {
    /// No such key for that Key ID or username.
    Unknown,
    /// Minted by another pod.
    ForeignPod(String),
    /// Deleted, and its grace period is over.
    Stopped(Timestamp),
    Disabled,
}

impl KeyRefusal {
    pub fn describe(&self) -> String {
        match self {
            KeyRefusal::Unknown => "the Key ID or secret key is wrong".into(),
            KeyRefusal::ForeignPod(p) => format!("this secret key belongs to pod {p}; call that pod's API host"),
            KeyRefusal::Stopped(t) => format!(
                "this secret key was deleted and stopped working at {}; use the API user's other key",
                t.to_rfc3339()
            ),
            KeyRefusal::Disabled => "the API user is disabled".into(),
        }
    }
}

/// Checks an API secret key presented with its owner's Key ID or username.
pub async fn check_key(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    owner: KeyOwner<'_>,
    secret: &SecretString,
) -> Result<Result<(crate::model::ApiKey, User), KeyRefusal>, crate::error::StoreError> {
    let secret = secret.expose_secret();
    if let Some(shape) = credential::shape(secret) {
        if shape.pod != settings.pod_id {
            return Ok(Err(KeyRefusal::ForeignPod(shape.pod.to_string())));
        }
    }
    let Some((key, user)) = store.api_key_by_digest(&Digest::of(secret)).await? else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    let owner_matches = match owner {
        KeyOwner::KeyId(id) => user.key_id.as_deref() == Some(id),
        KeyOwner::Username(name) => user.username == name,
    };
    if !owner_matches || user.kind != UserKind::Api {
        return Ok(Err(KeyRefusal::Unknown));
    }
    let (refusal, reason) = if !key.works_at(now) {
        (
            KeyRefusal::Stopped(key.stops_at.unwrap_or(now)),
            "deleted secret key",
        )
    } else if user.disabled {
        (KeyRefusal::Disabled, "disabled user")
    } else {
        return Ok(Ok((key, user)));
    };
    let target = format!("user:{}", user.username);
    store
        .record_audit(NewAudit::auth_failed(
            user.org_id,
            now,
            &user.username,
            target,
            reason,
        ))
        .await?;
    Ok(Err(refusal))
}

async fn key_principal(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    owner: KeyOwner<'_>,
    secret: &SecretString,
    method: AuthMethod,
) -> Result<Principal, BearerError> {
    match check_key(store, now, settings, owner, secret).await? {
        Ok((_, user)) => {
            let grants = user.effective_grants();
            Ok(Principal::of_user(user, grants, method))
        }
        Err(KeyRefusal::Unknown) if method == AuthMethod::Basic => {
            Err(BearerError::invalid_token(BASIC_HELP))
        }
        Err(r) => Err(BearerError::invalid_token(r.describe())),
    }
}
