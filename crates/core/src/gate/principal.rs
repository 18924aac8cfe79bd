//! Who is calling a protected API: the one [`Principal`] every credential resolves to.

use super::BearerError;
use crate::model::{AppId, OrgId, User, UserId, UserKind};
use crate::permissions::{Grant, GrantSet};

/// How a principal authenticated (docs/architecture.md, ways to authenticate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// An OAuth 2.0 access token.
    AccessToken,
    /// An API secret key used directly: `Bearer base64(<key id>:<secret key>)`.
    ApiKey,
    /// HTTP Basic with an API user's username and secret key.
    Basic,
    /// A request signed with OAuth 1.0a token credentials (RFC 5849 §3).
    OAuth1,
    /// An XML API `Login` session, opened with an API user's username and secret key.
    XmlSession,
}

/// Who is calling: one org, one user, optionally an application, and the grants in force now.
#[derive(Clone, Debug)]
pub struct Principal {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub username: String,
    pub user_kind: UserKind,
    pub app_id: Option<AppId>,
    pub client_id: Option<String>,
    /// Effective grants, as of now: for access tokens the token's scope ∩ the application's
    /// scopes ∩ the user's grants; for secret keys the API user's grants.
    pub grants: GrantSet,
    pub method: AuthMethod,
}

impl Principal {
    /// `insufficient_scope` naming `g` unless the principal holds it.
    pub fn require(&self, g: Grant) -> Result<(), BearerError> {
        if self.grants.contains(g) {
            Ok(())
        } else {
            Err(BearerError::insufficient_scope(g))
        }
    }

    pub(crate) fn of_user(user: User, grants: GrantSet, method: AuthMethod) -> Principal {
        Principal {
            org_id: user.org_id,
            user_id: user.id,
            username: user.username,
            user_kind: user.kind,
            app_id: None,
            client_id: None,
            grants,
            method,
        }
    }
}
