//! Organizations and their users (UI users and API users), with disabling and deletion.

use async_trait::async_trait;

use super::{NewAudit, Result};
use crate::clock::Timestamp;
use crate::credential::Digest;
use crate::model::{Org, OrgId, Role, User, UserId, UserKind};
use crate::permissions::{Grant, GrantSet};

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub kind: UserKind,
    pub role: Role,
    pub grants: GrantSet,
    /// argon2id PHC string; UI users only.
    pub password_hash: Option<String>,
    /// API users only.
    pub key_id: Option<String>,
    /// The password is a one-time one (generated at bootstrap or by an admin): the console
    /// asks for a new one before anything else.
    pub must_change_password: bool,
    pub created_at: Timestamp,
}

/// Organizations and users.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Creates an org and its principal org admin in one transaction.
    /// `Conflict("organization")` if the name is taken.
    async fn create_org(&self, name: &str, admin: NewUser, audit: NewAudit) -> Result<(Org, User)>;
    async fn org_by_name(&self, name: &str) -> Result<Option<Org>>;
    /// The org with this id (a signed-in user's own).
    async fn org_by_id(&self, id: OrgId) -> Result<Option<Org>>;
    async fn count_orgs(&self) -> Result<i64>;
    /// `Conflict("user")` if the username is taken in the org.
    async fn create_user(&self, org: OrgId, user: NewUser, audit: NewAudit) -> Result<User>;
    async fn user_by_username(&self, org: OrgId, username: &str) -> Result<Option<User>>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;
    /// The argon2id PHC string of a UI user's password.
    async fn password_hash(&self, user: UserId) -> Result<Option<String>>;
    /// The principal org admin of `org`.
    async fn principal_admin(&self, org: OrgId) -> Result<Option<User>>;
    /// Replaces the user's grants. `NotFound("user")` if gone.
    async fn set_user_grants(&self, user: UserId, grants: GrantSet, audit: NewAudit) -> Result<()>;
    /// Adds (`on`) or removes one grant in one statement, so concurrent changes of different
    /// grants all hold; returns the grants after the change. `NotFound("user")` if gone.
    async fn change_user_grant(
        &self,
        user: UserId,
        grant: Grant,
        on: bool,
        audit: NewAudit,
    ) -> Result<GrantSet>;
    /// Disables (`true`) or re-enables a user; a disabled user's credentials stop at once.
    /// `NotFound("user")` if gone.
    async fn set_user_disabled(
        &self,
        user: UserId,
        disabled: bool,
        at: Timestamp,
        audit: NewAudit,
    ) -> Result<()>;
    /// Deletes a user with its keys, account accesses and tokens. `NotFound("user")` if gone.
    async fn delete_user(&self, user: UserId, audit: NewAudit) -> Result<()>;
    /// Every user of the org (UI and API users), ordered by username.
    async fn users(&self, org: OrgId) -> Result<Vec<User>>;
    /// Makes the user an org admin or a plain user; honoured by every credential of the user
    /// on its next use (docs/architecture.md, the credential cache). `NotFound("user")` if
    /// gone.
    async fn set_user_role(&self, user: UserId, role: Role, audit: NewAudit) -> Result<()>;
    /// Sets the role and grants of the user of `old.id` to `role` and `grants`, with the
    /// audit record, only if both are still as in `old` (a compare-and-set); `false`
    /// (nothing written) when they are not or the user is gone.
    async fn update_user_access(
        &self,
        old: &User,
        role: Role,
        grants: GrantSet,
        audit: NewAudit,
    ) -> Result<bool>;
    /// Replaces a UI user's password (an argon2id PHC string) and whether it must be changed
    /// at the next sign-in, and ends every browser session of the user except `keep_session`
    /// (the session of a user changing their own password), in one transaction.
    /// `NotFound("user")` if there is no such UI user.
    async fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        must_change: bool,
        keep_session: Option<Digest>,
        audit: NewAudit,
    ) -> Result<()>;
}
