//! The token endpoint's `refresh_token` grant (RFC 6749 §6, docs/architecture.md, token rules): the 4 h / 3 h
//! re-issue rule, and rotation with a lost-response grace (RFC 9700 §4.14.2). The issuance
//! here is shared with the `authorization_code` grant's later refreshes.

use secrecy::{ExposeSecret, SecretString};

use super::minter::Minter;
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Minted};
use crate::model::{AccessTokenRecord, Application, OrgId, UserId};
use crate::oauth::scope::{granted_scopes, narrow_scope};
use crate::oauth::{ErrorCode, OAuthError, TokenResponse};
use crate::permissions::GrantSet;
use crate::settings::{ReissuePolicy, Settings};
use crate::store::{NewAudit, RefreshOutcome, RefreshTokenRecord, Reissue, Rotation, Store};

/// The re-issue rule (docs/architecture.md, token rules): a new token only once the newest
/// has been valid for `reissue_after` (or has expired); before that, the same token
/// (`reuse`) or a refusal until the window ends (`reject`). A request that names a scope
/// (`requested`) other than the newest token's is refused until the window ends under both
/// policies: the window is never a way to get a broader token back silently, nor to mint
/// tokens by alternating scopes.
pub fn reissue_rule(
    newest: Option<&AccessTokenRecord>,
    requested: Option<GrantSet>,
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
    if requested.is_some_and(|r| r != t.scopes) {
        return Reissue::Reject {
            retry_at: window_ends,
        };
    }
    match settings.tokens.reissue_policy {
        ReissuePolicy::Reuse => Reissue::Reuse,
        ReissuePolicy::Reject => Reissue::Reject {
            retry_at: window_ends,
        },
    }
}

/// Whether a rotated refresh token presented again at `now` is still inside the grace for a
/// lost response (`tokens.rotation_grace`); after it, the reuse revokes the family.
pub fn within_rotation_grace(rotated_at: Timestamp, now: Timestamp, settings: &Settings) -> bool {
    now < rotated_at.plus(settings.tokens.rotation_grace)
}

/// `grant_type=refresh_token` for an authenticated client.
pub(crate) async fn refresh(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    refresh_token: &SecretString,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = refresh_token.expose_secret();
    if let Some(pod) = credential::foreign_pod(settings, presented) {
        return Err(OAuthError::invalid_grant(format!(
            "this refresh token belongs to {pod}; send it to that pod's token endpoint"
        )));
    }
    let Some(rt) = store.refresh_token(&Digest::of(presented)).await? else {
        refused(
            store,
            now,
            settings,
            app,
            "unknown or revoked refresh token",
        )
        .await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown or its account access was deleted",
        ));
    };
    if rt.access.app_id != app.id {
        refused(
            store,
            now,
            settings,
            app,
            "refresh token of another application",
        )
        .await?;
        return Err(OAuthError::invalid_grant(
            "the refresh token was not issued to this client",
        ));
    }
    let granted = granted_scopes(store, app, rt.access.user_id)
        .await?
        .intersect(rt.access.scopes)
        .intersect(rt.scopes);
    let scopes = narrow_scope(granted, scope)?;
    let requested = scope.map(|_| scopes);
    if app.rotate_refresh_tokens {
        return rotate(store, now, settings, app, presented, &rt, scopes).await;
    }
    let issue = Issue::of(&rt, rt.id, scopes, false).asking(requested);
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
    rt: &RefreshTokenRecord,
    scopes: GrantSet,
) -> Result<TokenResponse, OAuthError> {
    let pod = &settings.pod_id;
    let mut rotated_at = rt.rotated_at;
    if rotated_at.is_none() {
        match rotate_once(store, now, settings, app, presented, rt, scopes).await? {
            Some(answer) => return Ok(answer),
            // Rotated by a concurrent request a moment ago.
            None => rotated_at = Some(now),
        }
    }
    if rotated_at.is_some_and(|t| within_rotation_grace(t, now, settings)) {
        if let Some((id, nonce)) = store.refresh_successor(rt.id).await? {
            let next = credential::derive_refresh_token(pod, presented, &nonce);
            let value = next.value.expose_secret().to_string();
            let issue = Issue::of(rt, id, scopes, true);
            return issue_from_refresh(store, now, settings, app, &value, issue).await;
        }
    }
    let target = format!("application:{}", app.client_id);
    let reason = "rotated refresh token reused; its family was revoked";
    let window = settings.audit.failure_window;
    let audit = NewAudit::auth_failed(
        rt.access.org_id,
        now,
        &app.client_id,
        target,
        reason,
        window,
    );
    store
        .revoke_refresh_family(rt.family_id, now, audit)
        .await?;
    Err(OAuthError::invalid_grant(
        "this refresh token was already used; as a precaution every token issued from it has been revoked: authorize again",
    ))
}

/// Exchanges the refresh token for its successor and the successor's first access token,
/// stored in one transaction; `None` if a concurrent request rotated it first.
async fn rotate_once(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    presented: &str,
    rt: &RefreshTokenRecord,
    scopes: GrantSet,
) -> Result<Option<TokenResponse>, OAuthError> {
    let nonce = credential::nonce();
    let next = credential::derive_refresh_token(&settings.pod_id, presented, &nonce);
    let successor = next.value.expose_secret();
    let user = rt.access.user_id;
    let minter = Minter::new(store, now, settings, app, successor, user).await?;
    let (access, record) = minter.fresh(now, scopes)?;
    let rotation = Rotation {
        old: rt.id,
        digest: next.digest,
        nonce: nonce.to_vec(),
        at: now,
        access_token: record,
        audit: issued_audit(app, rt.access.org_id, now, scopes),
    };
    let Some((_, stored)) = store.rotate_refresh_token(rotation).await? else {
        return Ok(None);
    };
    Ok(Some(TokenResponse {
        access_token: access.value,
        refresh_token: Some(successor.to_string().into()),
        expires_in: now.whole_seconds_until(stored.expires_at),
        scope: stored.scopes.to_scope(),
        deprecated: false,
        reissued: false,
    }))
}

/// The audit record of an access token issued from a refresh token.
fn issued_audit(app: &Application, org: OrgId, now: Timestamp, scopes: GrantSet) -> NewAudit {
    NewAudit::new(
        Some(org),
        now,
        app.client_id.clone(),
        "access_token.issued",
        format!("application:{}", app.client_id),
    )
    .with_detail(serde_json::json!({"grant_type": "refresh_token", "scope": scopes.to_scope()}))
}

/// What [`issue_from_refresh`] issues under.
struct Issue {
    refresh_id: i64,
    org: OrgId,
    scopes: GrantSet,
    /// The resource owner (the JWT `sub`).
    user: UserId,
    /// Answering a replay of a lost response: hand back the newest token whatever the policy.
    replay: bool,
    /// The scope the client named, if it named one.
    requested: Option<GrantSet>,
}

impl Issue {
    fn of(rt: &RefreshTokenRecord, refresh_id: i64, scopes: GrantSet, replay: bool) -> Issue {
        Issue {
            refresh_id,
            org: rt.access.org_id,
            scopes,
            user: rt.access.user_id,
            replay,
            requested: None,
        }
    }

    fn asking(self, requested: Option<GrantSet>) -> Issue {
        Issue { requested, ..self }
    }
}

/// Issues (or, inside the re-issue window, returns again) the access token derived from a
/// refresh token, and answers with both (docs/architecture.md, token rules).
async fn issue_from_refresh(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    refresh_token: &str,
    issue: Issue,
) -> Result<TokenResponse, OAuthError> {
    let minter = Minter::new(store, now, settings, app, refresh_token, issue.user).await?;
    let (fresh_value, fresh) = minter.fresh(now, issue.scopes)?;
    let audit = issued_audit(app, issue.org, now, issue.scopes);
    let decide = |newest: Option<&AccessTokenRecord>| match newest {
        Some(_) if issue.replay => Reissue::Reuse,
        _ => reissue_rule(newest, issue.requested, now, settings),
    };
    let outcome = store
        .refresh_access_token(issue.refresh_id, &decide, fresh, audit)
        .await?;
    let reissued = matches!(outcome, RefreshOutcome::Reused(_));
    let (record, value) = issued_token(&minter, now, settings, outcome, fresh_value)?;
    Ok(TokenResponse {
        access_token: value,
        refresh_token: Some(refresh_token.to_string().into()),
        expires_in: now.whole_seconds_until(record.expires_at),
        scope: record.scopes.to_scope(),
        deprecated: false,
        reissued,
    })
}

/// The token a refresh answers with: the fresh one, or the newest one made again. A refusal
/// inside the window is `slow_down` with the seconds to wait under the `reject` policy; under
/// `reuse` it can only be a scope other than the current token's: `invalid_scope`.
fn issued_token(
    minter: &Minter<'_>,
    now: Timestamp,
    settings: &Settings,
    outcome: RefreshOutcome,
    fresh: Minted,
) -> Result<(AccessTokenRecord, SecretString), OAuthError> {
    match outcome {
        RefreshOutcome::Issued(r) => Ok((r, fresh.value)),
        RefreshOutcome::Reused(r) => {
            let again = minter.make(
                &r.nonce,
                r.kid.as_deref(),
                r.scopes,
                r.issued_at,
                r.expires_at,
            )?;
            Ok((r, again.value))
        }
        RefreshOutcome::Rejected { retry_at } if settings.tokens.reissue_policy == ReissuePolicy::Reuse => {
            Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!(
                    "the current access token carries another scope; ask without scope (or for its scope) to get it again, or for this scope from {}",
                    retry_at.to_rfc3339()
                ),
            ))
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
            Err(e)
        }
        RefreshOutcome::Revoked => Err(OAuthError::invalid_grant("the account access was deleted")),
    }
}

/// Records a refused refresh by an authenticated client.
async fn refused(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    app: &Application,
    reason: &str,
) -> Result<(), OAuthError> {
    let target = format!("application:{}", app.client_id);
    let window = settings.audit.failure_window;
    let audit = NewAudit::auth_failed(app.org_id, now, &app.client_id, target, reason, window);
    Ok(store.record_audit(audit).await?)
}
