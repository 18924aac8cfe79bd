//! `client_credentials` with an API user's Key ID and secret key: the deprecated
//! "regularly refreshed short-lived tokens". A bearer token living `api_keys.token_ttl`,
//! carrying the user's grants, that stops with the key or the user. Applications do not use
//! this grant.

use crate::apikeys::{self, KeyOwner, KeyRefusal};
use crate::clock::Timestamp;
use crate::credential::{self, Kind};
use crate::limits::Attempt;
use crate::model::{ApiKey, User};
use crate::oauth::client_auth::ClientAuth;
use crate::oauth::scope::narrow_scope;
use crate::oauth::{ErrorCode, OAuthError, TokenResponse};
use crate::permissions::GrantSet;
use crate::settings::Settings;
use crate::store::{NewAccessToken, NewAudit, Store};

/// Issues a short-lived access token for the API user whose Key ID is the `client_id`.
pub(crate) async fn key_token(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    client: &ClientAuth,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let (key, user) = authenticate_key(store, now, settings, attempt, client).await?;
    let scopes = narrow_scope(user.effective_grants(), scope)?;
    let minted = credential::mint(Kind::AccessToken, &settings.pod_id);
    let token = NewAccessToken {
        digest: minted.digest,
        nonce: Vec::new(),
        scopes,
        issued_at: now,
        expires_at: now.plus(settings.api_keys.token_ttl),
        kid: None,
    };
    let expires_at = token.expires_at;
    store
        .issue_key_token(&key, &user, token, issued_audit(&user, now, scopes))
        .await?;
    Ok(TokenResponse {
        access_token: minted.value,
        refresh_token: None,
        expires_in: now.whole_seconds_until(expires_at),
        scope: scopes.to_scope(),
        deprecated: true,
        reissued: false,
    })
}

/// The key and its API user; an application's client id is told to use its own grant.
async fn authenticate_key(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    client: &ClientAuth,
) -> Result<(ApiKey, User), OAuthError> {
    let Some(secret) = &client.secret else {
        return Err(client.refused(
            "client_credentials needs the Key ID as client_id and a secret key as client_secret",
        ));
    };
    let owner = KeyOwner::KeyId(&client.client_id);
    match apikeys::check_key(store, now, settings, attempt, owner, secret).await? {
        Ok(found) => Ok(found),
        Err(KeyRefusal::Unknown) => Err(unknown_key(store, client).await?),
        Err(KeyRefusal::Throttled(t)) => Err(t.into()),
        Err(r) => Err(client.refused(r.describe())),
    }
}

async fn unknown_key(store: &dyn Store, client: &ClientAuth) -> Result<OAuthError, OAuthError> {
    if store
        .application_by_client_id(&client.client_id)
        .await?
        .is_some()
    {
        return Ok(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "applications do not use client_credentials: trade a refresh token with grant_type=refresh_token",
        ));
    }
    Ok(client.unknown())
}

fn issued_audit(user: &User, now: Timestamp, scopes: GrantSet) -> NewAudit {
    NewAudit::new(
        Some(user.org_id),
        now,
        user.username.clone(),
        "access_token.issued",
        format!("user:{}", user.username),
    )
    .with_detail(
        serde_json::json!({"grant_type": "client_credentials", "scope": scopes.to_scope()}),
    )
}
