//! Token introspection (RFC 7662). Introspection and revocation are for authenticated
//! clients, and a client sees only the tokens of its own organization: any other token is
//! `{"active": false}`.

use serde_json::{json, Value};

use super::client_auth::{authenticate_client, ClientAuth};
use super::{OAuthError, Params};
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::model::Application;
use crate::settings::Settings;
use crate::store::{BearerRecord, RefreshTokenRecord, Store};

/// An introspection or revocation request: the authenticated client and the token.
pub struct TokenQuery {
    pub client: Application,
    pub token: String,
}

/// Reads the request and authenticates the client. Introspection needs a confidential
/// client; revocation also accepts a public client naming itself (RFC 7009 §2.1).
pub async fn authenticate(
    store: &dyn Store,
    now: Timestamp,
    params: &Params,
    authorization: Option<&str>,
    allow_public: bool,
) -> Result<TokenQuery, OAuthError> {
    let auth = ClientAuth::from_request(params, authorization)?;
    let client = authenticate_client(store, now, &auth).await?;
    if client.public && !allow_public {
        return Err(OAuthError::invalid_client(
            "public clients cannot introspect tokens; use a confidential client",
            false,
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?
        .to_string();
    Ok(TokenQuery { client, token })
}

fn inactive() -> Value {
    json!({"active": false})
}

/// RFC 7662 §2.2: what the caller may know about a token at `now`.
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
            return Ok(access_token(&t, now, settings, &q.client));
        }
    }
    match store.refresh_token(&digest).await? {
        Some(r) if r.access.org_id == q.client.org_id => refresh_token(store, &r, settings).await,
        _ => Ok(inactive()),
    }
}

/// An access token: active unless refused now or of another org.
fn access_token(
    t: &BearerRecord,
    now: Timestamp,
    settings: &Settings,
    caller: &Application,
) -> Value {
    if t.refusal(now).is_some() || t.user.org_id != caller.org_id {
        return inactive();
    }
    let client_id = match &t.app {
        Some(app) => app.client_id.clone(),
        None => t.user.key_id.clone().unwrap_or_default(),
    };
    json!({
        "active": true,
        "scope": t.grants().to_scope(),
        "client_id": client_id,
        "username": t.user.username,
        "token_type": "Bearer",
        "exp": t.expires_at.millis() / 1000,
        "iat": t.issued_at.millis() / 1000,
        "sub": t.user.username,
        "iss": settings.public_url,
    })
}

/// A live refresh token of the caller's org: active while its user is enabled and its
/// application exists, with the grants it would carry now.
async fn refresh_token(
    store: &dyn Store,
    r: &RefreshTokenRecord,
    settings: &Settings,
) -> Result<Value, OAuthError> {
    let Some(user) = store
        .user_by_id(r.access.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(inactive());
    };
    let Some(app) = store.application_by_client_id(&r.client_id).await? else {
        return Ok(inactive());
    };
    let grants = r
        .scopes
        .intersect(r.access.scopes)
        .intersect(app.scopes)
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
