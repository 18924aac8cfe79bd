//! Resolving a protected request's credential to one [`Principal`] (DESIGN.md §3), and the
//! RFC 6750 errors when that fails.

use crate::audit::NewAudit;
use crate::clock::Clock;
use crate::credential::{self, Digest};
use crate::grant::{Grant, GrantSet};
use crate::model::{AppId, OrgId, UserId, UserKind};
use crate::settings::Settings;
use crate::store::Store;

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
    AccessToken,
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
    /// Effective grants: token scope ∩ application scopes ∩ the user's grants, as of now.
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
}

/// Resolves the `Authorization` header of a protected request.
pub async fn authenticate(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &Settings,
    authorization: Option<&str>,
) -> Result<Principal, BearerError> {
    let Some(header) = authorization else {
        return Err(BearerError {
            code: None,
            description: "this API needs a credential: send Authorization: Bearer <access token>"
                .into(),
            scope: None,
            cause: None,
        });
    };
    let (scheme, token) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::invalid_token(format!(
            "the {scheme} scheme is not accepted here: send Authorization: Bearer <access token>"
        )));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::invalid_token("the Bearer credential is empty"));
    }
    let now = clock.now();
    if let Some(shape) = credential::shape(token) {
        if shape.pod != settings.pod_id {
            return Err(BearerError::invalid_token(format!(
                "this token belongs to pod {}; call that pod's API host",
                shape.pod
            )));
        }
    }
    let Some(rec) = store.access_token(&Digest::of(token)).await? else {
        return Err(BearerError::invalid_token("the access token is unknown"));
    };
    if rec.revoked {
        return Err(BearerError::invalid_token(
            "the access token has been revoked; its account access was deleted",
        ));
    }
    if now >= rec.expires_at {
        return Err(BearerError::invalid_token(format!(
            "the access token expired at {}; get a new one from POST /oauth/token",
            rec.expires_at.to_rfc3339()
        )));
    }
    if rec.user.disabled {
        return Err(BearerError::invalid_token(
            "the user of this token is disabled",
        ));
    }
    let mut grants = rec.scopes.intersect(rec.user.effective_grants());
    if let Some(app) = &rec.app {
        grants = grants.intersect(app.scopes);
    }
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
        store.mark_access_token_used(rec.token_id, audit).await?;
    }
    Ok(Principal {
        org_id: rec.user.org_id,
        user_id: rec.user.id,
        username: rec.user.username,
        user_kind: rec.user.kind,
        app_id: rec.app.as_ref().map(|a| a.id),
        client_id: rec.app.map(|a| a.client_id),
        grants,
        method: AuthMethod::AccessToken,
    })
}
