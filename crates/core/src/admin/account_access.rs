//! Account access: an org admin binds an application to a UI user, which
//! yields a refresh token mailed to that admin and to the principal org admin; deleting it
//! cuts the integration off at once.

use secrecy::{ExposeSecret, SecretString};

use super::{conflict, AdminError, Ctx, Result};
use crate::credential::{self, Kind, Minted};
use crate::mail::{self, Mailer};
use crate::model::{AccountAccess, Application, Org, Role, User, UserKind};
use crate::store::AccessSummary;

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

/// Account access is added by an enabled org admin (a UI user) of the org.
fn check_admin(org: &Org, admin: &User) -> Result<()> {
    if admin.role == Role::OrgAdmin && admin.kind == UserKind::Ui && !admin.disabled {
        return Ok(());
    }
    Err(AdminError::Invalid(format!(
        "{} is not an org admin of {}; account access is added by an org admin",
        admin.username, org.name
    )))
}

/// Account access is for enabled UI users; API users have their own secret keys.
fn check_user(user: &User) -> Result<()> {
    let username = &user.username;
    if user.kind != UserKind::Ui {
        return Err(AdminError::Invalid(format!(
            "{username} is an API user; API users call APIs with their own secret keys (`grantry key generate`), account access is for UI users"
        )));
    }
    if user.disabled {
        return Err(AdminError::Invalid(format!("{username} is disabled")));
    }
    Ok(())
}

/// Binds an application to a UI user ("Add Account Access"), then mails the
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
    check_admin(&org, &admin)?;
    check_user(&user)?;
    let refresh = credential::mint(Kind::RefreshToken, &cx.settings.pod_id);
    let audit = cx
        .audit(
            Some(org.id),
            "account_access.created",
            format!("application:{client_id}/user:{username}"),
        )
        .with_detail(serde_json::json!({"by": by}));
    let access = cx
        .store
        .create_account_access(org.id, app.id, user.id, Some(admin.id), refresh.digest, audit)
        .await
        .map_err(|e| conflict(e, || format!(
            "{username} already has account access for application {client_id}; delete it first to issue a new refresh token"
        )))?;
    let (mailed_to, mail_error) = notify(cx, mailer, &org, &app, &user, &admin, &refresh).await?;
    Ok(AddedAccess {
        access,
        application: app,
        user,
        refresh_token: refresh.value,
        mailed_to,
        mail_error,
    })
}

/// Mails the new refresh token to the admin who added the access and to the principal org
/// admin; the addresses, and the delivery error if there was one.
async fn notify(
    cx: &Ctx<'_>,
    mailer: &dyn Mailer,
    org: &Org,
    app: &Application,
    user: &User,
    admin: &User,
    refresh: &Minted,
) -> Result<(Vec<String>, Option<String>)> {
    let principal = cx.store.principal_admin(org.id).await?;
    let mut to = vec![(admin.username.clone(), admin.email.clone())];
    if let Some(p) = principal.filter(|p| p.id != admin.id) {
        to.push((p.username, p.email));
    }
    let mailed_to = to.iter().map(|(_, e)| e.clone()).collect();
    let token_url = format!("{}/oauth/token", cx.settings.issuer());
    let notice = mail::AccountAccessNotice {
        org: &org.name,
        application: &app.name,
        client_id: &app.client_id,
        username: &user.username,
        created_by: &admin.username,
        refresh_token: refresh.value.expose_secret(),
        token_url: &token_url,
    };
    let mail_error = mailer
        .send(mail::account_access_created(&notice, to))
        .await
        .err();
    Ok((mailed_to, mail_error))
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
    let audit = cx.audit(
        Some(org.id),
        "account_access.deleted",
        format!("application:{client_id}/user:{username}"),
    );
    if cx
        .store
        .revoke_account_access(access.id, cx.now, audit)
        .await?
    {
        Ok(())
    } else {
        Err(missing())
    }
}

/// The org's live account accesses: admin-added and consented ones alike.
pub async fn list_account_access(cx: &Ctx<'_>, org: &str) -> Result<Vec<AccessSummary>> {
    let org = cx.org(org).await?;
    Ok(cx.store.account_accesses(org.id).await?)
}
