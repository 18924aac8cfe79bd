//! The token endpoint's `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700
//! §4.5): the code is spent in one conditional statement before anything is checked, so it
//! can never be used twice; a second use revokes what the first one issued.

use secrecy::ExposeSecret;

use crate::audit::NewAudit;
use crate::authorize::pkce_matches;
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::model::Application;
use crate::settings::Settings;
use crate::store::{Consent, Redemption, Store};
use crate::token::{granted_scopes, CodeRedemption, Minter, OAuthError, TokenResponse};

fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Redeems an authorization code for an access token and a new refresh token.
pub async fn redeem(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    req: CodeRedemption<'_>,
) -> Result<TokenResponse, OAuthError> {
    let code = match store
        .redeem_auth_code(&Digest::of(req.code.expose_secret()), now)
        .await?
    {
        Redemption::Fresh(c) => c,
        Redemption::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is unknown",
            ))
        }
        Redemption::Reused(c) => {
            let audit = NewAudit::auth_failed(
                c.org_id,
                now,
                &app.client_id,
                format!("application:{}", app.client_id),
                "authorization code reused; its tokens were revoked",
            );
            store.record_audit(audit).await?;
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens it issued have been revoked",
            ));
        }
    };
    if code.app_id != app.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if now >= code.expires_at {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired; start the authorization again",
        ));
    }
    let redirect_ok = match req.redirect_uri {
        Some(u) => u == code.redirect_uri,
        None => !code.redirect_uri_given,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must be the one sent in the authorization request",
        ));
    }
    match (&code.code_challenge, req.code_verifier) {
        (Some(_), Some(v)) if !verifier_ok(v) => {
            return Err(OAuthError::invalid_request(
                "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
            ))
        }
        (Some(c), Some(v)) if !pkce_matches(v, c) => {
            return Err(OAuthError::invalid_grant(
                "the code_verifier does not match the code_challenge",
            ))
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required (PKCE)",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "a code_verifier was sent but the authorization request had no code_challenge",
            ))
        }
        _ => {}
    }
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
    let audit = NewAudit::new(
        Some(code.org_id),
        now,
        app.client_id.clone(),
        "account_access.granted",
        format!("application:{}", app.client_id),
    )
    .with_detail(serde_json::json!({"user": code.user_id, "scope": scopes.to_scope(), "access_token_issued": true}));
    store.grant_account_access(consent, audit).await?;
    Ok(TokenResponse {
        access_token: access_token.value,
        refresh_token: Some(refresh_value.to_string().into()),
        expires_in: now.whole_seconds_until(expires_at),
        scope: scopes.to_scope(),
        deprecated: false,
    })
}
