//! Token revocation (RFC 7009).

use super::introspect::TokenQuery;
use super::OAuthError;
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::store::{NewAudit, TokenStore};

/// RFC 7009 §2.2: revokes the token if it is one of the caller's org; an unknown token is
/// not an error. A storage failure is.
pub async fn revoke(
    store: &dyn TokenStore,
    now: Timestamp,
    q: &TokenQuery,
) -> Result<(), OAuthError> {
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
