//! The token endpoint's `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700
//! §4.5): the code is spent in one conditional statement before anything is checked, so it
//! can never be used twice; a second use revokes what the first one issued. Then each rule
//! is one check step, in order.

use secrecy::{ExposeSecret, SecretString};

use super::minter::Minter;
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::model::{Application, AuthCode};
use crate::oauth::pkce;
use crate::oauth::scope::granted_scopes;
use crate::oauth::{OAuthError, TokenResponse};
use crate::settings::Settings;
use crate::store::{Consent, NewAudit, Redemption, Store, StoreError};

/// The token request's part of the authorization-code grant.
pub struct CodeRedemption<'a> {
    pub code: &'a SecretString,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// Redeems an authorization code for an access token and a new refresh token.
pub async fn redeem(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    req: CodeRedemption<'_>,
) -> Result<TokenResponse, OAuthError> {
    let code = spend(store, now, settings, app, req.code).await?;
    check_expiry(&code, now)?;
    check_redirect_uri(&code, req.redirect_uri)?;
    pkce::check_verifier(code.code_challenge.as_deref(), req.code_verifier)?;
    issue(store, now, settings, app, &code).await
}

/// Spends the code, which must be the client's own (RFC 6749 §4.1.3): another client's code
/// is refused before it is spent; a reused one has had its tokens revoked by the store, and
/// is audited.
async fn spend(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    code: &SecretString,
) -> Result<AuthCode, OAuthError> {
    if let Some(pod) = credential::foreign_pod(settings, code.expose_secret()) {
        return Err(OAuthError::invalid_grant(format!(
            "this authorization code was issued by {pod}; redeem it at that pod's token endpoint"
        )));
    }
    match store
        .redeem_auth_code(&Digest::of(code.expose_secret()), app.id, now)
        .await?
    {
        Redemption::Fresh(c) => Ok(c),
        Redemption::WrongClient => Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        )),
        Redemption::Unknown => Err(OAuthError::invalid_grant(
            "the authorization code is unknown",
        )),
        Redemption::Reused(c) => {
            let target = format!("application:{}", app.client_id);
            let reason = "authorization code reused; its tokens were revoked";
            let window = settings.audit.failure_window;
            let audit =
                NewAudit::auth_failed(c.org_id, now, &app.client_id, target, reason, window);
            store.record_audit(audit).await?;
            Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens it issued have been revoked",
            ))
        }
    }
}

/// RFC 6749 §4.1.2: codes are short-lived.
pub fn check_expiry(code: &AuthCode, now: Timestamp) -> Result<(), OAuthError> {
    if now < code.expires_at {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(
            "the authorization code has expired; start the authorization again",
        ))
    }
}

/// RFC 6749 §4.1.3: `redirect_uri` is required, and identical, when the authorization
/// request named it; it must not be sent when that request did not.
pub fn check_redirect_uri(code: &AuthCode, given: Option<&str>) -> Result<(), OAuthError> {
    let ok = match given {
        Some(u) => u == code.redirect_uri,
        None => !code.redirect_uri_given,
    };
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(
            "redirect_uri must be the one sent in the authorization request",
        ))
    }
}

/// Creates or extends the user's account access with a new refresh token and its first
/// access token, in one transaction.
async fn issue(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    code: &AuthCode,
) -> Result<TokenResponse, OAuthError> {
    let scopes = granted_scopes(store, app, code.user_id)
        .await?
        .intersect(code.scopes);
    let refresh = credential::mint(Kind::RefreshToken, &settings.pod_id);
    let refresh_value = refresh.value.expose_secret();
    let minter = Minter::new(store, now, settings, app, refresh_value, code.user_id).await?;
    let (access_token, record) = minter.fresh(now, scopes)?;
    let expires_at = record.expires_at;
    let consent = Consent {
        org: code.org_id,
        app: app.id,
        user: code.user_id,
        scopes,
        refresh_token: refresh.digest,
        code: Some(code.id),
        access_token: record,
    };
    let detail = serde_json::json!({"user": code.user_id, "scope": scopes.to_scope(), "access_token_issued": true});
    let audit = NewAudit::new(
        Some(code.org_id),
        now,
        app.client_id.clone(),
        "account_access.granted",
        format!("application:{}", app.client_id),
    )
    .with_detail(detail);
    match store.grant_account_access(consent, audit).await {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(OAuthError::invalid_grant(
                "the authorization code was used more than once while it was being redeemed, so no tokens were issued; start the authorization again",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(TokenResponse {
        access_token: access_token.value,
        refresh_token: Some(refresh_value.to_string().into()),
        expires_in: now.whole_seconds_until(expires_at),
        scope: scopes.to_scope(),
        deprecated: false,
        reissued: false,
    })
}
