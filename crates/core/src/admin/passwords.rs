//! UI users' passwords after they were created: an admin's reset to a one-time password,
//! and a user's own change (the one a one-time password asks for first).

use secrecy::{ExposeSecret, SecretString};

use super::users::MIN_PASSWORD;
use super::{AdminError, Ctx, Result};
use crate::credential::{password, Digest};
use crate::model::{User, UserKind};

/// Gives a UI user a new one-time password, shown once: their sessions end, and their next
/// sign-in asks for a new password.
pub async fn reset_password(cx: &Ctx<'_>, org: &str, username: &str) -> Result<SecretString> {
    let org = cx.org(org).await?;
    let user = cx.user(&org, username).await?;
    if user.kind != UserKind::Ui {
        return Err(AdminError::Invalid(format!(
            "{username} is an API user; API users have no password, they use secret keys"
        )));
    }
    let one_time = SecretString::from(password::generate());
    let phc = password::hash(one_time.expose_secret())?;
    let audit = cx.audit(
        Some(org.id),
        "user.password_reset",
        format!("user:{username}"),
    );
    cx.store
        .set_password(user.id, phc, true, None, audit)
        .await?;
    Ok(one_time)
}

/// What a user changing their own password sent.
pub struct PasswordChange<'a> {
    /// The current password; not asked for right after a sign-in with a one-time password.
    pub current: Option<&'a SecretString>,
    pub new: &'a SecretString,
    pub repeated: &'a SecretString,
    /// The session the change is made in, which stays signed in; the others end.
    pub session: Digest,
}

/// Sets a signed-in UI user's own password.
pub async fn change_password(
    cx: &Ctx<'_>,
    passwords: &dyn password::Verifier,
    user: &User,
    change: PasswordChange<'_>,
) -> Result<()> {
    let new = change.new.expose_secret();
    if new != change.repeated.expose_secret() {
        return Err(AdminError::Invalid(
            "the two new passwords differ; type the same one twice".into(),
        ));
    }
    if new.chars().count() < MIN_PASSWORD {
        return Err(AdminError::Invalid(format!(
            "the new password must be at least {MIN_PASSWORD} characters"
        )));
    }
    if let Some(current) = change.current {
        let phc = cx.store.password_hash(user.id).await?.unwrap_or_default();
        if phc.is_empty() || !passwords.verify(current.clone(), phc).await {
            return Err(AdminError::Invalid("the current password is wrong".into()));
        }
    }
    let phc = password::hash(new)?;
    let target = format!("user:{}", user.username);
    let audit = cx.audit(Some(user.org_id), "user.password_changed", target);
    cx.store
        .set_password(user.id, phc, false, Some(change.session), audit)
        .await?;
    Ok(())
}
