//! An OAuth 2.0 access token presented to a protected API: looked up by its digest (also a
//! JWT, so that revocation wins over the signature), refused with its reason audited, and
//! its first use recorded.

use super::{AuthMethod, BearerError, Principal};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::settings::Settings;
use crate::store::{BearerRecord, NewAudit, Store, TokenRefusal};

/// The principal of a live access token.
pub(super) async fn principal(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    token: &str,
) -> Result<Principal, BearerError> {
    let digest = Digest::of(token);
    let Some(rec) = store.access_token(&digest).await? else {
        return Err(BearerError::invalid_token("the access token is unknown"));
    };
    if let Some(refusal) = rec.refusal(now) {
        store
            .record_audit(refused_audit(&rec, now, settings, refusal))
            .await?;
        return Err(BearerError::invalid_token(describe(&rec, refusal)));
    }
    if !rec.first_used {
        store
            .mark_access_token_used(&digest, rec.token_id, first_use_audit(&rec, now))
            .await?;
    }
    let grants = rec.grants();
    let mut p = Principal::of_user(rec.user, grants, AuthMethod::AccessToken);
    p.app_id = rec.app.as_ref().map(|a| a.id);
    p.client_id = rec.app.map(|a| a.client_id);
    Ok(p)
}

/// Who presented the token, for the audit log: its application, else its API user.
fn actor(rec: &BearerRecord) -> &str {
    rec.app
        .as_ref()
        .map_or(rec.user.username.as_str(), |a| a.client_id.as_str())
}

fn describe(rec: &BearerRecord, refusal: TokenRefusal) -> String {
    match refusal {
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
    }
}

fn refused_audit(
    rec: &BearerRecord,
    now: Timestamp,
    settings: &Settings,
    refusal: TokenRefusal,
) -> NewAudit {
    let reason = refusal.reason();
    let target = format!("user:{}", rec.user.username);
    let window = settings.audit.failure_window;
    NewAudit::auth_failed(rec.user.org_id, now, actor(rec), target, reason, window)
        .with_detail(serde_json::json!({"reason": reason, "token": rec.token_id}))
}

fn first_use_audit(rec: &BearerRecord, now: Timestamp) -> NewAudit {
    let target = format!("user:{}", rec.user.username);
    NewAudit::new(
        Some(rec.user.org_id),
        now,
        actor(rec),
        "access_token.first_used",
        target,
    )
    .with_detail(serde_json::json!({"token": rec.token_id}))
}
