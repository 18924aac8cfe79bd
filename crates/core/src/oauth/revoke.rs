//! Token revocation (RFC 7009).

use super::introspect::TokenQuery;
use super::OAuthError;
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::store::{NewAudit, Revocation, TokenStore};

/// RFC 7009 §2.1–2.2: revokes the token if it was issued to the caller; an unknown token is
/// not an error, but a live token of another client is refused and left alone. A storage
/// failure is an error.
pub async fn revoke(
    store: &dyn TokenStore,
    now: Timestamp,
    q: &TokenQuery,
) -> Result<(), OAuthError> {
    let (actor, target) = q.client.actor_and_target();
    let audit = NewAudit::new(Some(q.client.org_id()), now, actor, "token.revoked", target);
    let digest = Digest::of(&q.token);
    match store.revoke_token(q.client.owner(), &digest, now, audit).await? {
        Revocation::Revoked | Revocation::Unknown => Ok(()),
        Revocation::NotOwner => Err(OAuthError::invalid_request(
            "this token was not issued to this client; only the client it was issued to can revoke it",
        )),
    }
}
