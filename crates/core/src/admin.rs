//! Org-admin operations (DESIGN.md §6), shared by the CLI and the console: each validates its
//! input, acts in one store transaction together with its audit record, and returns what the
//! caller must show once.

use secrecy::{ExposeSecret, SecretString};

use crate::audit::{AuditEvent, NewAudit};
use crate::clock::{Clock, Timestamp};
use crate::credential::{self, Kind};
use crate::error::StoreError;
use crate::grant::{Grant, GrantSet};
use crate::mail::{self, Mailer};
use crate::model::*;
use crate::password;
use crate::settings::Settings;
use crate::store::{NewApplication, NewUser, Store};

/// Why an admin operation failed; the message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AdminError::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => AdminError::NotFound(format!("{what} not found")),
            e => AdminError::Store(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, AdminError>;

/// Who acts, with what.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub settings: &'a Settings,
    /// Recorded as the audit actor (`cli`, or the console user's name).
    pub actor: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn audit(
        &self,
        org: Option<OrgId>,
        now: Timestamp,
        action: &'static str,
        target: String,
    ) -> NewAudit {
        NewAudit::new(org, now, self.actor, action, target)
    }

    pub(crate) async fn org(&self, name: &str) -> Result<Org> {
        self.store.org_by_name(name).await?.ok_or_else(|| {
            AdminError::NotFound(format!(
                "organization {name:?} not found; create it with `grantry org create --name {name} ...`"
            ))
        })
    }

    pub(crate) async fn user(&self, org: &Org, username: &str) -> Result<User> {
        self.store
            .user_by_username(org.id, username)
            .await?
            .ok_or_else(|| {
                AdminError::NotFound(format!(
                "user {username:?} not found in organization {}; add it with `grantry user add`",
                org.name
            ))
            })
    }

    async fn app(&self, org: &Org, client_id: &str) -> Result<Application> {
        match self.store.application_by_client_id(client_id).await? {
            Some(app) if app.org_id == org.id => Ok(app),
            _ => Err(AdminError::NotFound(format!(
                "no application with client id {client_id} in organization {}",
                org.name
            ))),
        }
    }
}

fn validate_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{what} {s:?} must be 1-64 characters of letters, digits, '-', '_', '.', '@'"
        )))
    }
}

fn validate_email(s: &str) -> Result<String> {
    crate::platform::validate_email("email", s)
        .map_err(|_| AdminError::Invalid(format!("{s:?} is not a valid e-mail address")))
}

/// A redirect URI must be absolute, carry no fragment (RFC 6749 §3.1.2) and no white space.
fn validate_redirect_uri(u: &str) -> Result<()> {
    let scheme_ok = u.split_once(':').is_some_and(|(s, rest)| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && rest.starts_with('/')
    });
    if scheme_ok && !u.contains('#') && !u.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "redirect URI {u:?} must be an absolute URI without a fragment, e.g. https://app.example.com/callback"
        )))
    }
}

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
    let now = cx.clock.now();
    let password = password::generate();
    let admin = NewUser {
        username: admin_username.into(),
        email,
        kind: UserKind::Ui,
        role: Role::OrgAdmin,
        grants: GrantSet::all(),
        password_hash: Some(password::hash(&password)),
        key_id: None,
        created_at: now,
    };
    let audit = cx
        .audit(
            None,
            now,
            "organization.created",
            format!("organization:{name}"),
        )
        .with_detail(serde_json::json!({"principal_admin": admin_username}));
    let (org, admin) = cx
        .store
        .create_org(name, admin, audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AdminError::Conflict(format!("organization {name:?} already exists"))
            }
            e => e.into(),
        })?;
    Ok(CreatedOrg {
        org,
        admin,
        password: password.into(),
    })
}

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

/// Adds a UI user (console, password) or an API user (Key ID, no password).
pub async fn add_user(cx: &Ctx<'_>, org: &str, input: UserInput) -> Result<AddedUser> {
    let org = cx.org(org).await?;
    validate_name("username", &input.username)?;
    let email = validate_email(&input.email)?;
    let now = cx.clock.now();
    let (hash, key_id, shown) = match input.kind {
        UserKind::Ui => {
            let (pw, shown) = match input.password {
                Some(p) if p.expose_secret().len() >= 12 => (p.expose_secret().to_string(), None),
                Some(_) => {
                    return Err(AdminError::Invalid(
                        "the password must be at least 12 characters".into(),
                    ))
                }
                None => {
                    let p = password::generate();
                    (p.clone(), Some(SecretString::from(p)))
                }
            };
            (Some(password::hash(&pw)), None, shown)
        }
        UserKind::Api => {
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
            (None, Some(credential::new_id()), None)
        }
    };
    let audit = cx
        .audit(
            Some(org.id),
            now,
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
        password_hash: hash,
        key_id,
        created_at: now,
    };
    let user = cx
        .store
        .create_user(org.id, user, audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AdminError::Conflict(format!(
                "user {:?} already exists in organization {}",
                input.username, org.name
            )),
            e => e.into(),
        })?;
    Ok(AddedUser {
        user,
        password: shown,
    })
}

/// Gives (`on`) or takes away a grant; takes effect on the user's next request.
pub async fn set_grant(
    cx: &Ctx<'_>,
    org: &str,
    username: &str,
    grant: Grant,
    on: bool,
) -> Result<User> {
    let org = cx.org(org).await?;
    let mut user = cx.user(&org, username).await?;
    let mut grants = user.grants;
    if on {
        grants.insert(grant);
    } else {
        grants.remove(grant);
    }
    let now = cx.clock.now();
    let action = if on {
        "user.grant_added"
    } else {
        "user.grant_revoked"
    };
    let audit = cx
        .audit(Some(org.id), now, action, format!("user:{username}"))
        .with_detail(serde_json::json!({"grant": grant.name()}));
    cx.store.set_user_grants(user.id, grants, audit).await?;
    user.grants = grants;
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
    let now = cx.clock.now();
    let action = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    let audit = cx.audit(Some(org.id), now, action, format!("user:{username}"));
    cx.store
        .set_user_disabled(user.id, disabled, now, audit)
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
    let now = cx.clock.now();
    let audit = cx
        .audit(
            Some(org.id),
            now,
            "user.deleted",
            format!("user:{username}"),
        )
        .with_detail(serde_json::json!({"kind": user.kind.as_str()}));
    Ok(cx.store.delete_user(user.id, audit).await?)
}

/// What to register with [`add_application`].
pub struct AppInput {
    pub name: String,
    pub description: String,
    pub redirect_uris: Vec<String>,
    /// `None`: every grant.
    pub scopes: Option<GrantSet>,
    pub public: bool,
    pub rotate_refresh_tokens: bool,
    pub token_format: crate::jwt::TokenFormat,
}

/// Registers an application; the client secret (absent for public clients) is shown once.
pub async fn add_application(
    cx: &Ctx<'_>,
    org: &str,
    input: AppInput,
) -> Result<(Application, Option<SecretString>)> {
    let org = cx.org(org).await?;
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(AdminError::Invalid(
            "the application name must be 1-200 characters".into(),
        ));
    }
    if input.description.len() > 2000 {
        return Err(AdminError::Invalid(
            "the description must be at most 2000 characters".into(),
        ));
    }
    for u in &input.redirect_uris {
        validate_redirect_uri(u)?;
    }
    let now = cx.clock.now();
    let secret = (!input.public).then(|| credential::mint(Kind::ClientSecret, &cx.settings.pod_id));
    let client_id = credential::new_id();
    let scopes = input.scopes.unwrap_or_else(GrantSet::all);
    let audit = cx
        .audit(
            Some(org.id),
            now,
            "application.created",
            format!("application:{client_id}"),
        )
        .with_detail(
            serde_json::json!({"name": name, "public": input.public, "scopes": scopes.names()}),
        );
    let app = NewApplication {
        org_id: org.id,
        client_id,
        name: name.to_string(),
        description: input.description,
        scopes,
        redirect_uris: input.redirect_uris,
        public: input.public,
        rotate_refresh_tokens: input.rotate_refresh_tokens,
        token_format: input.token_format,
        created_at: now,
    };
    let app = cx
        .store
        .create_application(app, secret.as_ref().map(|s| s.digest), audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AdminError::Conflict(format!(
                "organization {} already has an application named {name:?}",
                org.name
            )),
            e => e.into(),
        })?;
    Ok((app, secret.map(|s| s.value)))
}

/// Gives an application a new client secret (shown once); the old ones keep working for
/// `overlap`, so the client can be redeployed without downtime.
pub async fn rotate_client_secret(
    cx: &Ctx<'_>,
    org: &str,
    client_id: &str,
    overlap: std::time::Duration,
) -> Result<(SecretString, Timestamp)> {
    let org = cx.org(org).await?;
    let app = cx.app(&org, client_id).await?;
    if app.public {
        return Err(AdminError::Invalid(format!(
            "application {client_id} is a public client and has no secret"
        )));
    }
    let now = cx.clock.now();
    let old_expires_at = now.plus(overlap);
    let secret = credential::mint(Kind::ClientSecret, &cx.settings.pod_id);
    let audit = cx
        .audit(
            Some(org.id),
            now,
            "application.secret_rotated",
            format!("application:{client_id}"),
        )
        .with_detail(serde_json::json!({"old_secrets_expire_at": old_expires_at.to_rfc3339()}));
    cx.store
        .rotate_client_secret(app.id, secret.digest, now, old_expires_at, audit)
        .await?;
    Ok((secret.value, old_expires_at))
}

/// A new account access, with its refresh token (shown once) and how the e-mail went.
pub struct AddedAccess {
    pub access: AccountAccess,
    pub application: Application,
    pub user: User,
    pub refresh_token: SecretString,
    /// Who the refresh token was mailed to.
    pub mailed_to: Vec<String>,
    /// Set when the mail could not be delivered (the access exists regardless).
    pub mail_error: Option<String>,
}

/// Binds an application to a UI user (seeds 000/001 "Add Account Access"), then mails the
/// refresh token to the admin who did it and to the principal org admin.
pub async fn add_account_access(
    cx: &Ctx<'_>,
    mailer: &dyn Mailer,
    org: &str,
    client_id: &str,
    username: &str,
    by: &str,
) -> Result<AddedAccess> {
    let org = cx.org(org).await?;
    let app = cx.app(&org, client_id).await?;
    let user = cx.user(&org, username).await?;
    let admin = cx.user(&org, by).await?;
    if admin.role != Role::OrgAdmin || admin.kind != UserKind::Ui || admin.disabled {
        return Err(AdminError::Invalid(format!(
            "{by} is not an org admin of {}; account access is added by an org admin",
            org.name
        )));
    }
    if user.kind != UserKind::Ui {
        return Err(AdminError::Invalid(format!(
            "{username} is an API user; API users call APIs with their own secret keys (`grantry key generate`), account access is for UI users"
        )));
    }
    if user.disabled {
        return Err(AdminError::Invalid(format!("{username} is disabled")));
    }
    let now = cx.clock.now();
    let refresh = credential::mint(Kind::RefreshToken, &cx.settings.pod_id);
    let audit = cx
        .audit(
            Some(org.id),
            now,
            "account_access.created",
            format!("application:{client_id}/user:{username}"),
        )
        .with_detail(serde_json::json!({"by": by}));
    let access = cx
        .store
        .create_account_access(org.id, app.id, user.id, Some(admin.id), refresh.digest, audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AdminError::Conflict(format!(
                "{username} already has account access for application {client_id}; delete it first to issue a new refresh token"
            )),
            e => e.into(),
        })?;
    let principal = cx.store.principal_admin(org.id).await?;
    let mut to = vec![(admin.username.clone(), admin.email.clone())];
    if let Some(p) = principal.filter(|p| p.id != admin.id) {
        to.push((p.username, p.email));
    }
    let mailed_to = to.iter().map(|(_, e)| e.clone()).collect();
    let notice = mail::AccountAccessNotice {
        org: &org.name,
        application: &app.name,
        client_id,
        username,
        created_by: by,
        refresh_token: refresh.value.expose_secret(),
        token_url: &format!(
            "{}/oauth/token",
            cx.settings.public_url.trim_end_matches('/')
        ),
    };
    let mail_error = mailer
        .send(mail::account_access_created(&notice, to))
        .await
        .err();
    Ok(AddedAccess {
        access,
        application: app,
        user,
        refresh_token: refresh.value,
        mailed_to,
        mail_error,
    })
}

/// Deletes an account access: its refresh token and every access token derived from it stop
/// working at once.
pub async fn delete_account_access(
    cx: &Ctx<'_>,
    org: &str,
    client_id: &str,
    username: &str,
) -> Result<()> {
    let org = cx.org(org).await?;
    let app = cx.app(&org, client_id).await?;
    let user = cx.user(&org, username).await?;
    let missing = || {
        AdminError::NotFound(format!(
            "{username} has no account access for application {client_id}"
        ))
    };
    let access = cx
        .store
        .account_access(app.id, user.id)
        .await?
        .ok_or_else(missing)?;
    let now = cx.clock.now();
    let audit = cx.audit(
        Some(org.id),
        now,
        "account_access.deleted",
        format!("application:{client_id}/user:{username}"),
    );
    if cx
        .store
        .revoke_account_access(access.id, now, audit)
        .await?
    {
        Ok(())
    } else {
        Err(missing())
    }
}

/// The org's live account accesses: admin-added and consented ones alike.
pub async fn list_account_access(
    cx: &Ctx<'_>,
    org: &str,
) -> Result<Vec<crate::store::AccessSummary>> {
    let org = cx.org(org).await?;
    Ok(cx.store.account_accesses(org.id).await?)
}

/// The org's audit log, oldest first.
pub async fn audit_log(
    cx: &Ctx<'_>,
    org: &str,
    since: Option<Timestamp>,
) -> Result<Vec<AuditEvent>> {
    let org = cx.org(org).await?;
    Ok(cx.store.audit_events(org.id, since).await?)
}
