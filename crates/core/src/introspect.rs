//! Token introspection (RFC 7662), revocation (RFC 7009) and authorization-server metadata
//! (RFC 8414). Introspection and revocation are for authenticated clients, and a client sees
//! only the tokens of its own organization: any other token is `{"active": false}`.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::audit::NewAudit;
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::grant::{Grant, GrantSet};
use crate::model::Application;
use crate::settings::Settings;
use crate::store::Store;
use crate::token::{authenticate_client, client_auth, ErrorCode, OAuthError};

/// An introspection or revocation request: the authenticated client and the token.
pub struct TokenQuery {
    pub client: Application,
    pub token: String,
}

/// Parses the form and authenticates the client. Introspection needs a confidential client;
/// revocation also accepts a public client naming itself (RFC 7009 §2.1).
pub async fn authenticate(
    store: &dyn Store,
    now: Timestamp,
    form: &[(String, String)],
    authorization: Option<&str>,
    allow_public: bool,
) -> Result<TokenQuery, OAuthError> {
    let mut seen = HashSet::new();
    if let Some((k, _)) = form.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("parameter {k} was sent more than once"),
        ));
    }
    let get = |n: &str| {
        form.iter()
            .find(|(k, v)| k == n && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let auth = client_auth(get("client_id"), get("client_secret"), authorization)?;
    let client = authenticate_client(store, now, &auth).await?;
    if client.public && !allow_public {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "public clients cannot introspect tokens; use a confidential client",
        ));
    }
    let token = get("token")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))?
        .to_string();
    Ok(TokenQuery { client, token })
}

fn inactive() -> Value {
    json!({"active": false})
}

/// RFC 7662 §2.2: what the caller may know about a token.
pub async fn introspect(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    q: &TokenQuery,
) -> Result<Value, OAuthError> {
    let digest = Digest::of(&q.token);
    let is_refresh = credential::shape(&q.token).is_some_and(|s| s.kind == Kind::RefreshToken);
    if !is_refresh {
        if let Some(t) = store.access_token(&digest).await? {
            if t.refusal(now).is_some() || t.user.org_id != q.client.org_id {
                return Ok(inactive());
            }
            let grants = t.grants();
            let client_id = match &t.app {
                Some(app) => app.client_id.clone(),
                None => t.user.key_id.clone().unwrap_or_default(),
            };
            return Ok(json!({
                "active": true,
                "scope": grants.to_scope(),
                "client_id": client_id,
                "username": t.user.username,
                "token_type": "Bearer",
                "exp": t.expires_at.millis() / 1000,
                "iat": t.issued_at.millis() / 1000,
                "sub": t.user.username,
                "iss": settings.public_url,
            }));
        }
    }
    let Some(r) = store.refresh_token(&digest).await? else {
        return Ok(inactive());
    };
    if r.access.org_id != q.client.org_id {
        return Ok(inactive());
    }
    let Some(user) = store
        .user_by_id(r.access.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(inactive());
    };
    let app_scopes = match store.application_by_client_id(&r.client_id).await? {
        Some(a) => a.scopes,
        None => return Ok(inactive()),
    };
    let grants = r
        .scopes
        .intersect(r.access.scopes)
        .intersect(app_scopes)
        .intersect(user.effective_grants());
    Ok(json!({
        "active": true,
        "scope": grants.to_scope(),
        "client_id": r.client_id,
        "username": r.username,
        "token_type": "refresh_token",
        "iat": r.created_at.millis() / 1000,
        "sub": r.username,
        "iss": settings.public_url,
    }))
}

/// RFC 7009 §2.2: revokes the token if it is one of the caller's org; an unknown token is
/// not an error. A storage failure is.
pub async fn revoke(store: &dyn Store, now: Timestamp, q: &TokenQuery) -> Result<(), OAuthError> {
    let audit = NewAudit::new(
        Some(q.client.org_id),
        now,
        q.client.client_id.clone(),
        "token.revoked",
        format!("application:{}", q.client.client_id),
    );
    store
        .revoke_token(q.client.org_id, &Digest::of(&q.token), now, audit)
        .await?;
    Ok(())
}

/// RFC 8414 metadata: exactly what this server supports.
pub fn metadata(settings: &Settings) -> Value {
    let base = settings.public_url.trim_end_matches('/');
    let scopes: Vec<&str> = GrantSet::all().iter().map(Grant::name).collect();
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "service_documentation": format!("{base}/docs/api-keys"),
    })
}
