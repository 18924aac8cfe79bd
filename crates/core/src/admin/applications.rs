//! Applications (OAuth clients): registration and client-secret rotation.

use secrecy::SecretString;

use super::{conflict, AdminError, Ctx, Result};
use crate::clock::Timestamp;
use crate::credential::{self, Kind, Minted};
use crate::model::{Application, TokenFormat};
use crate::permissions::GrantSet;
use crate::settings::Settings;
use crate::store::{AppSummary, NewApplication, NewSecret};
use crate::validate::storable;

/// What to register with [`add_application`].
pub struct AppInput {
    pub name: String,
    pub description: String,
    pub redirect_uris: Vec<String>,
    /// `None`: every grant.
    pub scopes: Option<GrantSet>,
    pub public: bool,
    pub rotate_refresh_tokens: bool,
    pub token_format: TokenFormat,
}

/// The name (trimmed), description and redirect URIs must be usable.
fn check_input(input: &AppInput) -> Result<()> {
    check_fields(&input.name, &input.description, &input.redirect_uris)
}

fn check_fields(name: &str, description: &str, redirect_uris: &[String]) -> Result<()> {
    let (raw_name, name) = (name, name.trim());
    if name.is_empty() || name.len() > 200 {
        return Err(AdminError::Invalid(
            "the application name must be 1-200 characters".into(),
        ));
    }
    if !storable(raw_name) || !storable(description) {
        return Err(AdminError::Invalid(
            "the application name and description must not contain a NUL character".into(),
        ));
    }
    if description.len() > 2000 {
        return Err(AdminError::Invalid(
            "the description must be at most 2000 characters".into(),
        ));
    }
    for u in redirect_uris {
        if let Err(why) = crate::validate::redirect_uri(u) {
            return Err(AdminError::Invalid(format!(
                "redirect URI {u:?} {why}, e.g. https://app.example.com/callback"
            )));
        }
    }
    Ok(())
}

/// A new client secret: derived from the OAuth 1.0a key when the server has one, so that
/// OAuth 1.0a signatures can be checked with it (docs/architecture.md, OAuth 1.0a), else
/// minted at random.
fn new_secret(settings: &Settings) -> (Minted, NewSecret) {
    match &settings.oauth1.key {
        Some(key) => {
            let nonce = credential::random_bytes::<16>();
            let minted = key.client_secret(&settings.pod_id, &nonce);
            let stored = NewSecret {
                digest: minted.digest,
                derive_nonce: Some(nonce),
            };
            (minted, stored)
        }
        None => {
            let minted = credential::mint(Kind::ClientSecret, &settings.pod_id);
            let stored = NewSecret::from(minted.digest);
            (minted, stored)
        }
    }
}

/// Registers an application; the client secret (absent for public clients) is shown once.
pub async fn add_application(
    cx: &Ctx<'_>,
    org: &str,
    input: AppInput,
) -> Result<(Application, Option<SecretString>)> {
    let org = cx.org(org).await?;
    check_input(&input)?;
    let name = input.name.trim().to_string();
    let secret = (!input.public).then(|| new_secret(cx.settings));
    let client_id = credential::new_id();
    let scopes = input.scopes.unwrap_or_else(GrantSet::apis);
    let audit = cx
        .audit(
            Some(org.id),
            "application.created",
            format!("application:{client_id}"),
        )
        .with_detail(
            serde_json::json!({"name": name, "public": input.public, "scopes": scopes.names()}),
        );
    let app = NewApplication {
        org_id: org.id,
        client_id,
        name: name.clone(),
        description: input.description,
        scopes,
        redirect_uris: input.redirect_uris,
        public: input.public,
        rotate_refresh_tokens: input.rotate_refresh_tokens,
        token_format: input.token_format,
        created_at: cx.now,
    };
    let app = cx
        .store
        .create_application(app, secret.as_ref().map(|s| s.1), audit)
        .await
        .map_err(|e| {
            conflict(e, || {
                format!(
                    "organization {} already has an application named {name:?}",
                    org.name
                )
            })
        })?;
    Ok((app, secret.map(|s| s.0.value)))
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
    let old_expires_at = cx.now.plus(overlap);
    let (secret, stored) = new_secret(cx.settings);
    let audit = cx
        .audit(
            Some(org.id),
            "application.secret_rotated",
            format!("application:{client_id}"),
        )
        .with_detail(serde_json::json!({"old_secrets_expire_at": old_expires_at.to_rfc3339()}));
    cx.store
        .rotate_client_secret(app.id, stored, cx.now, old_expires_at, audit)
        .await?;
    Ok((secret.value, old_expires_at))
}

/// One application of the org.
pub async fn find_application(cx: &Ctx<'_>, org: &str, client_id: &str) -> Result<Application> {
    let org = cx.org(org).await?;
    cx.app(&org, client_id).await
}

/// The org's applications, by name, each with when it last used a refresh token.
pub async fn list_applications(cx: &Ctx<'_>, org: &str) -> Result<Vec<AppSummary>> {
    let org = cx.org(org).await?;
    Ok(cx.store.applications(org.id).await?)
}

/// Deletes an application: its client secrets, account accesses and tokens stop working on
/// the next request.
pub async fn delete_application(cx: &Ctx<'_>, org: &str, client_id: &str) -> Result<()> {
    let org = cx.org(org).await?;
    let app = cx.app(&org, client_id).await?;
    let audit = cx
        .audit(
            Some(org.id),
            "application.deleted",
            format!("application:{client_id}"),
        )
        .with_detail(serde_json::json!({"name": app.name}));
    if cx.store.delete_application(app.id, audit).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!(
            "no application with client id {client_id} in organization {}",
            org.name
        )))
    }
}

/// What [`update_application`] changes; `None` keeps a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AppChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub scopes: Option<GrantSet>,
}

/// Changes an application's name, description, redirect URIs or scopes, if `current` holds
/// for it as it is now (the caller's `If-Match`), in one compare-and-set: a change made by
/// someone else in between is [`AdminError::Stale`], never overwritten. Narrower scopes
/// bind the application's tokens from their next use on.
pub async fn update_application(
    cx: &Ctx<'_>,
    org: &str,
    client_id: &str,
    change: AppChange,
    current: &(dyn Fn(&Application) -> bool + Sync),
) -> Result<Application> {
    let org = cx.org(org).await?;
    let old = cx.app(&org, client_id).await?;
    if !current(&old) {
        return Err(stale(client_id));
    }
    let mut new = old.clone();
    if let Some(name) = change.name {
        new.name = name.trim().to_string();
    }
    if let Some(d) = change.description {
        new.description = d;
    }
    if let Some(u) = change.redirect_uris {
        new.redirect_uris = u;
    }
    if let Some(s) = change.scopes {
        if s.is_empty() {
            return Err(AdminError::Invalid(
                "an application needs at least one scope".into(),
            ));
        }
        new.scopes = s;
    }
    check_fields(&new.name, &new.description, &new.redirect_uris)?;
    let audit = cx
        .audit(
            Some(org.id),
            "application.updated",
            format!("application:{client_id}"),
        )
        .with_detail(serde_json::json!({
            "name": new.name, "scopes": new.scopes.names(), "redirect_uris": new.redirect_uris,
        }));
    let changed = cx
        .store
        .update_application(&old, &new, audit)
        .await
        .map_err(|e| {
            conflict(e, || {
                format!(
                    "organization {} already has an application named {:?}",
                    org.name, new.name
                )
            })
        })?;
    if changed {
        Ok(new)
    } else {
        Err(stale(client_id))
    }
}

fn stale(client_id: &str) -> AdminError {
    AdminError::Stale(format!(
        "application {client_id} was changed since it was read; read it again and repeat the change"
    ))
}
