//! The token endpoint's `refresh_token` grant (RFC 6749 §6, DESIGN.md §2): the 4 h / 3 h
//! re-issue rule, rotation with a lost-response grace, and the minting of access tokens that
//! every grant issuing from a refresh token shares.

use secrecy::{ExposeSecret, SecretString};

use crate::audit::NewAudit;
use crate::clock::Timestamp;
use crate::credential::{self, Digest};
use crate::grant::GrantSet;
use crate::jwt::{self, active_key, ensure_keys, AccessClaims, TokenFormat};
use crate::model::Application;
use crate::settings::{ReissuePolicy, Settings};
use crate::store::{NewAccessToken, RefreshOutcome, Reissue, Store};
use crate::token::{narrow_scope, ErrorCode, OAuthError, TokenResponse};

/// The re-issue rule of DESIGN.md §2: a new token only once the newest has been valid for
/// `reissue_after`; before that, the same token (`reuse`) or a refusal (`reject`).
pub fn reissue_rule(
    newest: Option<&crate::model::AccessTokenRecord>,
    now: Timestamp,
    settings: &Settings,
) -> Reissue {
    let Some(t) = newest else {
        return Reissue::Issue;
    };
    let window_ends = t.issued_at.plus(settings.tokens.reissue_after);
    if now >= window_ends || now >= t.expires_at {
        return Reissue::Issue;
    }
    match settings.tokens.reissue_policy {
        ReissuePolicy::Reuse => Reissue::Reuse,
        ReissuePolicy::Reject => Reissue::Reject {
            retry_at: window_ends,
        },
    }
}

pub(crate) async fn refresh(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    refresh_token: &SecretString,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = refresh_token.expose_secret();
    if let Some(shape) = credential::shape(presented) {
        if shape.pod != settings.pod_id {
            return Err(OAuthError::invalid_grant(format!(
                "this refresh token belongs to pod {}; send it to that pod's API host",
                shape.pod
            )));
        }
    }
    let Some(rt) = store.refresh_token(&Digest::of(presented)).await? else {
        refused(store, now, app, "unknown or revoked refresh token").await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown or its account access was deleted",
        ));
    };
    if rt.access.app_id != app.id {
        refused(store, now, app, "refresh token of another application").await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was not issued to this client",
        ));
    }
    let access = &rt.access;
    let granted = granted_scopes(store, app, access.user_id)
        .await?
        .intersect(access.scopes)
        .intersect(rt.scopes);
    let scopes = narrow_scope(granted, scope)?;
    if app.rotate_refresh_tokens {
        return rotate(store, now, settings, app, presented, &rt, scopes).await;
    }
    let issue = Issue {
        refresh_id: rt.id,
        org: access.org_id,
        grant_type: "refresh_token",
        scopes,
        user: access.user_id,
        replay: false,
    };
    issue_from_refresh(store, now, settings, app, presented, issue).await
}

/// Refresh under rotation (RFC 9700 §4.14.2): the token is exchanged for its successor. A
/// rotated token presented again inside `tokens.rotation_grace` gets the same answer (the
/// response was lost); later, it is taken as stolen and its whole family is revoked.
async fn rotate(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    presented: &str,
    rt: &crate::store::RefreshTokenRecord,
    scopes: GrantSet,
) -> Result<TokenResponse, OAuthError> {
    let issue = |refresh_id, replay| Issue {
        refresh_id,
        org: rt.access.org_id,
        grant_type: "refresh_token",
        scopes,
        user: rt.access.user_id,
        replay,
    };
    let mut rotated_at = rt.rotated_at;
    if rotated_at.is_none() {
        let nonce = credential::nonce();
        let next = credential::derive_refresh_token(&settings.pod_id, presented, &nonce);
        match store
            .rotate_refresh_token(rt.id, next.digest, nonce.to_vec(), now)
            .await?
        {
            Some(id) => {
                let value = next.value.expose_secret().to_string();
                return issue_from_refresh(store, now, settings, app, &value, issue(id, false))
                    .await;
            }
            // Rotated by a concurrent request a moment ago.
            None => rotated_at = Some(now),
        }
    }
    if rotated_at.is_some_and(|t| now < t.plus(settings.tokens.rotation_grace)) {
        if let Some((id, nonce)) = store.refresh_successor(rt.id).await? {
            let next = credential::derive_refresh_token(&settings.pod_id, presented, &nonce);
            let value = next.value.expose_secret().to_string();
            return issue_from_refresh(store, now, settings, app, &value, issue(id, true)).await;
        }
    }
    let audit = NewAudit::auth_failed(
        rt.access.org_id,
        now,
        &app.client_id,
        format!("application:{}", app.client_id),
        "rotated refresh token reused; its family was revoked",
    );
    store
        .revoke_refresh_family(rt.family_id, now, audit)
        .await?;
    Err(OAuthError::invalid_grant(
        "this refresh token was already used; as a precaution every token issued from it has been revoked: authorize again",
    ))
}

/// Makes the access tokens of one refresh token: derived from it (opaque) or signed JWTs
/// whose `jti` is derived from it (RFC 9068 applications).
pub(crate) struct Minter<'a> {
    keys: Vec<jwt::SigningKey>,
    settings: &'a Settings,
    app: &'a Application,
    refresh_token: &'a str,
    user: crate::model::UserId,
}

impl<'a> Minter<'a> {
    pub(crate) async fn new(
        store: &dyn Store,
        now: Timestamp,
        settings: &'a Settings,
        app: &'a Application,
        refresh_token: &'a str,
        user: crate::model::UserId,
    ) -> Result<Minter<'a>, OAuthError> {
        let keys = match app.token_format {
            TokenFormat::Jwt => ensure_keys(store, now, settings.tokens.key_rotation).await?,
            TokenFormat::Opaque => Vec::new(),
        };
        Ok(Minter {
            keys,
            settings,
            app,
            refresh_token,
            user,
        })
    }

    /// The token for these facts; the same facts always give the same token.
    pub(crate) fn make(
        &self,
        nonce: &[u8],
        kid: Option<&str>,
        scopes: GrantSet,
        iat: Timestamp,
        exp: Timestamp,
    ) -> Result<credential::Minted, OAuthError> {
        match kid.and_then(|kid| self.keys.iter().find(|k| k.kid == kid)) {
            None => Ok(credential::derive_access_token(
                &self.settings.pod_id,
                self.refresh_token,
                nonce,
            )),
            Some(key) => {
                let claims = AccessClaims {
                    issuer: &self.settings.public_url,
                    audience: &self.settings.public_url,
                    subject: self.user.to_string(),
                    client_id: &self.app.client_id,
                    scopes,
                    issued_at: iat,
                    expires_at: exp,
                };
                jwt::access_token(key, &claims, self.refresh_token, nonce)
                    .map_err(OAuthError::server)
            }
        }
    }

    /// A new access token issued at `now`: its value and what to store.
    pub(crate) fn fresh(
        &self,
        now: Timestamp,
        scopes: GrantSet,
    ) -> Result<(credential::Minted, NewAccessToken), OAuthError> {
        let nonce = credential::nonce();
        let expires_at = now.plus(self.settings.tokens.access_ttl);
        let kid = active_key(&self.keys, now).map(|k| k.kid.clone());
        let value = self.make(&nonce, kid.as_deref(), scopes, now, expires_at)?;
        let record = NewAccessToken {
            digest: value.digest,
            nonce: nonce.to_vec(),
            scopes,
            issued_at: now,
            expires_at,
            kid,
        };
        Ok((value, record))
    }
}

/// What [`issue_from_refresh`] issues under.
pub(crate) struct Issue {
    pub refresh_id: i64,
    pub org: crate::model::OrgId,
    pub grant_type: &'static str,
    pub scopes: GrantSet,
    /// The resource owner (the JWT `sub`).
    pub user: crate::model::UserId,
    /// Answering a replay of a lost response: hand back the newest token whatever the policy.
    pub replay: bool,
}

/// Issues (or, inside the re-issue window, returns again) the access token derived from a
/// refresh token, and answers with both (DESIGN.md §2).
pub(crate) async fn issue_from_refresh(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    refresh_token: &str,
    issue: Issue,
) -> Result<TokenResponse, OAuthError> {
    let minter = Minter::new(store, now, settings, app, refresh_token, issue.user).await?;
    let (fresh_value, fresh) = minter.fresh(now, issue.scopes)?;
    let audit = NewAudit::new(
        Some(issue.org),
        now,
        app.client_id.clone(),
        "access_token.issued",
        format!("application:{}", app.client_id),
    )
    .with_detail(
        serde_json::json!({"grant_type": issue.grant_type, "scope": issue.scopes.to_scope()}),
    );
    let decide = |newest: Option<&crate::model::AccessTokenRecord>| match newest {
        Some(_) if issue.replay => Reissue::Reuse,
        _ => reissue_rule(newest, now, settings),
    };
    let outcome = store
        .refresh_access_token(issue.refresh_id, &decide, fresh, audit)
        .await?;
    let (record, value) = match outcome {
        RefreshOutcome::Issued(r) => (r, fresh_value.value),
        RefreshOutcome::Reused(r) => {
            let v = minter.make(
                &r.nonce,
                r.kid.as_deref(),
                r.scopes,
                r.issued_at,
                r.expires_at,
            )?;
            (r, v.value)
        }
        RefreshOutcome::Rejected { retry_at } => {
            let wait = now.seconds_until_ceil(retry_at);
            let mut e = OAuthError::new(
                ErrorCode::SlowDown,
                format!(
                    "a new access token can be issued from {} (in {wait} s); keep using the current one until then",
                    retry_at.to_rfc3339()
                ),
            );
            e.retry_after = Some(wait);
            return Err(e);
        }
        RefreshOutcome::Revoked => {
            return Err(OAuthError::invalid_grant("the account access was deleted"))
        }
    };
    Ok(TokenResponse {
        access_token: value,
        refresh_token: Some(refresh_token.to_string().into()),
        expires_in: now.whole_seconds_until(record.expires_at),
        scope: record.scopes.to_scope(),
        deprecated: false,
    })
}

/// Records a refused refresh by an authenticated client.
async fn refused(
    store: &dyn Store,
    now: Timestamp,
    app: &Application,
    reason: &str,
) -> Result<(), OAuthError> {
    let target = format!("application:{}", app.client_id);
    let audit = NewAudit::auth_failed(app.org_id, now, &app.client_id, target, reason);
    Ok(store.record_audit(audit).await?)
}

/// What an account access grants: the application's scopes intersected with the user's
/// grants. `invalid_grant` if the user is disabled or gone.
pub(crate) async fn granted_scopes(
    store: &dyn Store,
    app: &Application,
    user_id: crate::model::UserId,
) -> Result<GrantSet, OAuthError> {
    match store.user_by_id(user_id).await? {
        Some(u) if !u.disabled => Ok(app.scopes.intersect(u.effective_grants())),
        Some(_) => Err(OAuthError::invalid_grant(
            "the user of this account access is disabled",
        )),
        None => Err(OAuthError::invalid_grant(
            "the user of this account access no longer exists",
        )),
    }
}
