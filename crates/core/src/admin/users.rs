//! UI users (console, password) and API users (Key ID, secret keys): adding, grants,
//! disabling and deletion.

use secrecy::{ExposeSecret, SecretString};

use super::{conflict, validate_email, validate_name, AdminError, Ctx, Result};
use crate::credential::{self, password};
use crate::model::{Role, User, UserKind};
use crate::permissions::{Grant, GrantSet};
use crate::store::NewUser;

/// Shortest password an admin may set for a UI user.
pub const MIN_PASSWORD: usize = 12;

/// What to create with [`add_user`].
pub struct UserInput {
    pub username: String,
    pub email: String,
    pub kind: UserKind,
    pub role: Role,
    pub grants: GrantSet,
    /// UI users: the password to set; a random one is generated (and returned) when absent.
    pub password: Option<SecretString>,
}

pub struct AddedUser {
    pub user: User,
    /// A generated password, shown once.
    pub password: Option<SecretString>,
}

/// How a new user signs in: a UI user's password hash (and the generated password to show),
/// or an API user's Key ID.
struct Credentials {
    password_hash: Option<String>,
    key_id: Option<String>,
    shown: Option<SecretString>,
}

/// A UI user's password: the one given (at least [`MIN_PASSWORD`] characters) or a new one.
fn ui_credentials(given: Option<SecretString>) -> Result<Credentials> {
    let (pw, shown) = match given {
        Some(p) if p.expose_secret().len() >= MIN_PASSWORD => (p, None),
        Some(_) => {
            return Err(AdminError::Invalid(format!(
                "the password must be at least {MIN_PASSWORD} characters"
            )))
        }
        None => {
            let p = SecretString::from(password::generate());
            (p.clone(), Some(p))
        }
    };
    Ok(Credentials {
        password_hash: Some(password::hash(pw.expose_secret())?),
        key_id: None,
        shown,
    })
}

/// An API user has no password and no admin role (API users only call APIs).
fn api_credentials(input: &UserInput) -> Result<Credentials> {
    if input.role == Role::OrgAdmin {
        return Err(AdminError::Invalid(
            "API users cannot be org admins; use --role user and --grant".into(),
        ));
    }
    if input.password.is_some() {
        return Err(AdminError::Invalid(
            "API users have no password; they authenticate with secret keys (`grantry key generate`)".into(),
        ));
    }
    Ok(Credentials {
        password_hash: None,
        key_id: Some(credential::new_id()),
        shown: None,
    })
}

/// The admin API's grants are held by org admins and API users only: a UI user who is not
/// an org admin cannot be given them (docs/architecture.md, the admin API).
fn check_admin_grants(kind: UserKind, role: Role, grants: GrantSet, username: &str) -> Result<()> {
    let admin = grants.admin_part();
    if kind == UserKind::Ui && role == Role::User && !admin.is_empty() {
        return Err(AdminError::Invalid(format!(
            "{username} is a UI user who is not an org admin and cannot hold {}: make them an org admin, or give the grant to an API user",
            admin.to_scope()
        )));
    }
    Ok(())
}

/// Adds a UI user (console, password) or an API user (Key ID, no password).
pub async fn add_user(cx: &Ctx<'_>, org: &str, input: UserInput) -> Result<AddedUser> {
    let org = cx.org(org).await?;
    validate_name("username", &input.username)?;
    check_admin_grants(input.kind, input.role, input.grants, &input.username)?;
    let email = validate_email(&input.email)?;
    let creds = match input.kind {
        UserKind::Ui => ui_credentials(input.password.clone())?,
        UserKind::Api => api_credentials(&input)?,
    };
    let audit = cx
        .audit(
            Some(org.id),
            "user.created",
            format!("user:{}", input.username),
        )
        .with_detail(serde_json::json!({
            "kind": input.kind.as_str(), "role": input.role.as_str(), "grants": input.grants.names()
        }));
    let user = NewUser {
        username: input.username.clone(),
        email,
        kind: input.kind,
        role: input.role,
        grants: input.grants,
        password_hash: creds.password_hash,
        key_id: creds.key_id,
        // A generated password is a one-time one; a given one, or none (API users), is not.
        must_change_password: creds.shown.is_some(),
        created_at: cx.now,
    };
    let user = cx
        .store
        .create_user(org.id, user, audit)
        .await
        .map_err(|e| {
            conflict(e, || {
                format!(
                    "user {:?} already exists in organization {}",
                    input.username, org.name
                )
            })
        })?;
    Ok(AddedUser {
        user,
        password: creds.shown,
    })
}

/// Gives (`on`) or takes away a grant, in place (a concurrent change of another grant is
/// kept); takes effect on the user's next request. Org admins hold every grant: none can be
/// taken from one.
pub async fn set_grant(
    cx: &Ctx<'_>,
    org: &str,
    username: &str,
    grant: Grant,
    on: bool,
) -> Result<User> {
    let org = cx.org(org).await?;
    let mut user = cx.user(&org, username).await?;
    if on {
        check_admin_grants(
            user.kind,
            user.role,
            [grant].into_iter().collect(),
            username,
        )?;
    }
    if !on && user.role == Role::OrgAdmin {
        return Err(AdminError::Invalid(format!(
            "{username} is an org admin of {}, and org admins hold every grant: {grant} cannot be taken from them",
            org.name
        )));
    }
    let action = if on {
        "user.grant_added"
    } else {
        "user.grant_revoked"
    };
    let audit = cx
        .audit(Some(org.id), action, format!("user:{username}"))
        .with_detail(serde_json::json!({"grant": grant.name()}));
    user.grants = cx
        .store
        .change_user_grant(user.id, grant, on, audit)
        .await?;
    Ok(user)
}

/// Disables (`disabled = true`) or re-enables a user. A disabled user's keys, tokens and
/// account accesses stop working at once; the principal org admin cannot be disabled.
pub async fn set_disabled(cx: &Ctx<'_>, org: &str, username: &str, disabled: bool) -> Result<User> {
    let org = cx.org(org).await?;
    let mut user = cx.user(&org, username).await?;
    if user.principal && disabled {
        return Err(AdminError::Invalid(format!(
            "{username} is the principal org admin of {} and cannot be disabled",
            org.name
        )));
    }
    let action = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    let audit = cx.audit(Some(org.id), action, format!("user:{username}"));
    cx.store
        .set_user_disabled(user.id, disabled, cx.now, audit)
        .await?;
    user.disabled = disabled;
    Ok(user)
}

/// Deletes a user with its keys, account accesses and tokens.
pub async fn delete_user(cx: &Ctx<'_>, org: &str, username: &str) -> Result<()> {
    let org = cx.org(org).await?;
    let user = cx.user(&org, username).await?;
    if user.principal {
        return Err(AdminError::Invalid(format!(
            "{username} is the principal org admin of {} and cannot be deleted",
            org.name
        )));
    }
    let audit = cx
        .audit(Some(org.id), "user.deleted", format!("user:{username}"))
        .with_detail(serde_json::json!({"kind": user.kind.as_str()}));
    Ok(cx.store.delete_user(user.id, audit).await?)
}

/// One user of the org, UI or API.
pub async fn find_user(cx: &Ctx<'_>, org: &str, username: &str) -> Result<User> {
    let org = cx.org(org).await?;
    cx.user(&org, username).await
}

/// The org's users, UI and API, by username.
pub async fn list_users(cx: &Ctx<'_>, org: &str) -> Result<Vec<User>> {
    let org = cx.org(org).await?;
    Ok(cx.store.users(org.id).await?)
}

/// The rules of a role: API users are never org admins, and the principal org admin stays one.
fn check_role(user: &User, role: Role, org: &str) -> Result<()> {
    let username = &user.username;
    if user.kind == UserKind::Api && role == Role::OrgAdmin {
        return Err(AdminError::Invalid(format!(
            "{username} is an API user; API users cannot be org admins"
        )));
    }
    if user.principal && role != Role::OrgAdmin {
        return Err(AdminError::Invalid(format!(
            "{username} is the principal org admin of {org} and stays an org admin"
        )));
    }
    Ok(())
}

/// Makes a UI user an org admin or a plain user ([`check_role`]).
pub async fn set_role(cx: &Ctx<'_>, org: &str, username: &str, role: Role) -> Result<User> {
    let org = cx.org(org).await?;
    let mut user = cx.user(&org, username).await?;
    check_role(&user, role, &org.name)?;
    let audit = cx
        .audit(
            Some(org.id),
            "user.role_changed",
            format!("user:{username}"),
        )
        .with_detail(serde_json::json!({"role": role.as_str()}));
    cx.store.set_user_role(user.id, role, audit).await?;
    user.role = role;
    Ok(user)
}

/// What [`update_user`] changes; `None` keeps a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    /// The whole set of grants the user holds afterwards.
    pub grants: Option<GrantSet>,
}

/// Changes a user's role and grants, if `current` holds for the user as they are now (the
/// caller's `If-Match`), in one compare-and-set: a change made by someone else in between
/// is [`AdminError::Stale`], never overwritten. Takes effect on the user's next request.
pub async fn update_user(
    cx: &Ctx<'_>,
    org: &str,
    username: &str,
    change: UserChange,
    current: &(dyn Fn(&User) -> bool + Sync),
) -> Result<User> {
    let org = cx.org(org).await?;
    let old = cx.user(&org, username).await?;
    if !current(&old) {
        return Err(stale(username));
    }
    let role = change.role.unwrap_or(old.role);
    let grants = change.grants.unwrap_or(old.grants);
    check_role(&old, role, &org.name)?;
    check_admin_grants(old.kind, role, grants, username)?;
    let audit = cx
        .audit(Some(org.id), "user.updated", format!("user:{username}"))
        .with_detail(serde_json::json!({"role": role.as_str(), "grants": grants.names()}));
    if !cx
        .store
        .update_user_access(&old, role, grants, audit)
        .await?
    {
        return Err(stale(username));
    }
    Ok(User {
        role,
        grants,
        ..old
    })
}

fn stale(username: &str) -> AdminError {
    AdminError::Stale(format!(
        "user {username} was changed since they were read; read them again and repeat the change"
    ))
}
