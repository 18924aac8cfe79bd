//! `client_credentials` with an API user's Key ID and secret key: seed 002's deprecated
//! "regularly refreshed short-lived tokens".

use crate::audit::NewAudit;
use crate::clock::Timestamp;
use crate::credential;
use crate::settings::Settings;
use crate::store::{NewAccessToken, Store};
use crate::token::{
    narrow_scope, ClientAuth, ClientAuthMethod, ErrorCode, OAuthError, TokenResponse,
};

/// `client_credentials` with an API user's Key ID and secret key (seed 002's deprecated
/// "regularly refreshed short-lived tokens"): a bearer token living `api_keys.token_ttl`,
/// carrying the user's grants, that stops with the key or the user.
pub(crate) async fn key_token(
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
