//! What a token may carry (RFC 6749 §3.3): the scopes an account access grants now, and a
//! requested scope narrowed to them.

use super::{ErrorCode, OAuthError};
use crate::model::{Application, UserId};
use crate::permissions::GrantSet;
use crate::store::DirectoryStore;

/// Parses a requested scope and checks it against what is granted; `None` means all of it.
pub fn narrow_scope(granted: GrantSet, scope: Option<&str>) -> Result<GrantSet, OAuthError> {
    let Some(s) = scope else {
        return Ok(granted);
    };
    let asked = GrantSet::parse_scope(s)
        .map_err(|bad| OAuthError::new(ErrorCode::InvalidScope, format!("unknown scope {bad}")))?;
    if asked.intersect(granted) != asked {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!(
                "the requested scope exceeds what is granted ({})",
                granted.to_scope()
            ),
        ));
    }
    Ok(asked)
}

/// What an account access grants: the application's scopes intersected with the user's
/// grants. `invalid_grant` if the user is disabled or gone.
pub(crate) async fn granted_scopes(
    store: &dyn DirectoryStore,
    app: &Application,
    user_id: UserId,
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
