//! Organizations: created with their principal org admin.

use secrecy::SecretString;

use super::{conflict, validate_email, validate_name, Ctx, Result};
use crate::credential::password;
use crate::model::{Org, Role, User, UserKind};
use crate::permissions::GrantSet;
use crate::store::NewUser;

/// A new organization and its principal org admin.
pub struct CreatedOrg {
    pub org: Org,
    pub admin: User,
    /// The admin's one-time password, shown once.
    pub password: SecretString,
}

/// Creates an organization with its principal org admin (a UI user holding every grant).
pub async fn create_org(
    cx: &Ctx<'_>,
    name: &str,
    admin_username: &str,
    admin_email: &str,
) -> Result<CreatedOrg> {
    validate_name("organization name", name)?;
    validate_name("username", admin_username)?;
    let email = validate_email(admin_email)?;
    let password = password::generate();
    let admin = NewUser {
        username: admin_username.into(),
        email,
        kind: UserKind::Ui,
        role: Role::OrgAdmin,
        grants: GrantSet::all(),
        password_hash: Some(password::hash(&password)?),
        key_id: None,
        must_change_password: true,
        created_at: cx.now,
    };
    let audit = cx
        .audit(None, "organization.created", format!("organization:{name}"))
        .with_detail(serde_json::json!({"principal_admin": admin_username}));
    let (org, admin) = cx
        .store
        .create_org(name, admin, audit)
        .await
        .map_err(|e| conflict(e, || format!("organization {name:?} already exists")))?;
    Ok(CreatedOrg {
        org,
        admin,
        password: password.into(),
    })
}
