//! Each admin command as admin API calls, answered with the local command's report.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use grantry_core::model::{AccountAccess, Role, UserKind};
use grantry_core::store::{AccessSummary, AuditEvent};
use grantry_core::{GrantSet, Timestamp};

use super::{text, Remote};
use crate::cli::{
    AccessCmd, AdminCommand, AppCmd, AuditArgs, KeyCmd, OrgCmd, UserCmd, UserGrantArgs, UserRef,
};
use crate::commands::{access, app, audit, key, org, parse_grant, parse_grants, user};
use crate::config::parse_duration;
use crate::error::{CliError, Result};
use crate::report::Report;

/// What a path segment escapes: everything but RFC 3986 §2.3's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn time(v: &Value, field: &str) -> Result<Timestamp> {
    let t = text(v, field)?;
    Timestamp::parse_rfc3339(&t)
        .ok_or_else(|| CliError::Remote(format!("the answer's {field} is not a time: {t:?}")))
}

fn grants(v: &Value) -> GrantSet {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().and_then(grantry_core::Grant::parse))
        .collect()
}

pub async fn run(r: &Remote, cmd: AdminCommand) -> Result<Box<dyn Report>> {
    let report: Box<dyn Report> = match cmd {
        AdminCommand::Org(OrgCmd::Create(a)) => {
            let body = json!({"name": a.name, "admin": a.admin, "email": a.email});
            let made = r.ok(Method::POST, "/orgs", Some(&body)).await?.body;
            Box::new(org::OrgCreated {
                org: text(&made, "org")?,
                admin: text(&made, "admin")?,
                password: SecretString::from(text(&made, "password")?),
            })
        }
        AdminCommand::User(cmd) => users(r, cmd).await?,
        AdminCommand::App(cmd) => apps(r, cmd).await?,
        AdminCommand::Access(cmd) => accesses(r, cmd).await?,
        AdminCommand::Key(cmd) => keys(r, cmd).await?,
        AdminCommand::Audit(args) => Box::new(audit_log(r, args).await?),
    };
    Ok(report)
}

/// The token's organization must be the one the command names: the admin API acts in the
/// caller's own organization only.
async fn same_org(r: &Remote, org: &str) -> Result<()> {
    let a = r.ok(Method::GET, "/org", None).await?;
    let theirs = text(&a.body, "name")?;
    if theirs == org {
        Ok(())
    } else {
        Err(CliError::Remote(format!(
            "the token belongs to organization {theirs:?}, not {org:?}; use a token of {org:?} or --org {theirs}"
        )))
    }
}

async fn users(r: &Remote, cmd: UserCmd) -> Result<Box<dyn Report>> {
    Ok(match cmd {
        UserCmd::Add(a) => {
            same_org(r, &a.org).await?;
            let kind: UserKind = a.kind.into();
            let role: Role = a.role.into();
            let mut body = json!({
                "username": a.username, "email": a.email, "kind": kind.as_str(),
                "role": role.as_str(), "grants": parse_grants(&a.grants)?.names(),
            });
            if a.password_stdin {
                let pw = user::read_password()?;
                body["password"] = json!(pw.expose_secret());
            }
            let made = r.ok(Method::POST, "/users", Some(&body)).await?.body;
            Box::new(user::UserAdded {
                org: a.org,
                username: text(&made, "username")?,
                kind,
                key_id: made["key_id"].as_str().map(str::to_string),
                password: made["password"]
                    .as_str()
                    .map(|p| SecretString::from(p.to_string())),
            })
        }
        UserCmd::Grant(a) => Box::new(set_grant(r, a, true).await?),
        UserCmd::Revoke(a) => Box::new(set_grant(r, a, false).await?),
        UserCmd::Disable(u) => Box::new(set_disabled(r, u, true).await?),
        UserCmd::Enable(u) => Box::new(set_disabled(r, u, false).await?),
        UserCmd::Delete(u) => {
            same_org(r, &u.org).await?;
            let path = format!("/users/{}", seg(&u.username));
            r.ok(Method::DELETE, &path, None).await?;
            Box::new(user::UserDeleted {
                org: u.org,
                username: u.username,
            })
        }
    })
}

/// Gives or takes one grant in place (`PUT`/`DELETE /users/{username}/grants/{grant}`).
async fn set_grant(r: &Remote, a: UserGrantArgs, on: bool) -> Result<user::GrantsHeld> {
    same_org(r, &a.org).await?;
    let grant = parse_grant(&a.grant)?;
    let path = format!("/users/{}/grants/{}", seg(&a.username), seg(grant.name()));
    let method = if on { Method::PUT } else { Method::DELETE };
    let held = r.ok(method, &path, None).await?.body;
    Ok(user::GrantsHeld {
        org: a.org,
        username: a.username,
        grants: grants(&held["grants"]),
    })
}

async fn set_disabled(r: &Remote, u: UserRef, disabled: bool) -> Result<user::UserDisabled> {
    same_org(r, &u.org).await?;
    let verb = if disabled { "disable" } else { "enable" };
    let path = format!("/users/{}/{verb}", seg(&u.username));
    r.ok(Method::POST, &path, None).await?;
    Ok(user::UserDisabled {
        org: u.org,
        username: u.username,
        disabled,
    })
}

async fn apps(r: &Remote, cmd: AppCmd) -> Result<Box<dyn Report>> {
    Ok(match cmd {
        AppCmd::Add(a) => {
            same_org(r, &a.org).await?;
            let format: grantry_core::model::TokenFormat = a.token_format.into();
            let mut body = json!({
                "name": a.name, "description": a.description, "redirect_uris": a.redirect_uris,
                "public": a.public, "rotate_refresh_tokens": a.rotate_refresh_tokens,
                "token_format": format.as_str(),
            });
            if !a.scopes.is_empty() {
                body["scopes"] = json!(parse_grants(&a.scopes)?.names());
            }
            let made = r.ok(Method::POST, "/applications", Some(&body)).await?.body;
            Box::new(app::AppAdded {
                org: a.org,
                name: text(&made, "name")?,
                client_id: text(&made, "client_id")?,
                client_secret: made["client_secret"]
                    .as_str()
                    .map(|s| SecretString::from(s.to_string())),
            })
        }
        AppCmd::RotateSecret(a) => {
            let overlap =
                parse_duration(&a.overlap).map_err(|e| CliError::Overlap(e.to_string()))?;
            same_org(r, &a.org).await?;
            let path = format!("/applications/{}/secrets", seg(&a.client_id));
            let body = json!({ "overlap_seconds": overlap.as_secs() });
            let made = r.ok(Method::POST, &path, Some(&body)).await?.body;
            Box::new(app::SecretRotated {
                client_id: a.client_id,
                client_secret: SecretString::from(text(&made, "client_secret")?),
                old_secret_expires_at: time(&made, "old_secrets_expire_at")?,
            })
        }
    })
}

fn summary(v: &Value) -> Result<AccessSummary> {
    Ok(AccessSummary {
        access: AccountAccess {
            id: 0,
            org_id: 0,
            app_id: 0,
            user_id: 0,
            created_by: None,
            scopes: grants(&v["scopes"]),
            created_at: time(v, "created_at")?,
        },
        client_id: text(v, "client_id")?,
        application: text(v, "application")?,
        username: text(v, "username")?,
        created_by: v["created_by"].as_str().map(str::to_string),
        last_used_at: v["last_used_at"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339),
    })
}

/// Every item of a paged list, following `next_cursor`.
async fn every(r: &Remote, path: &str) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page_path = match &cursor {
            Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
            None => format!("{path}{sep}limit=200"),
        };
        let page = r.ok(Method::GET, &page_path, None).await?.body;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(items),
        }
    }
}

async fn accesses(r: &Remote, cmd: AccessCmd) -> Result<Box<dyn Report>> {
    Ok(match cmd {
        AccessCmd::Add(a) => {
            same_org(r, &a.org).await?;
            let body = json!({"client_id": a.client_id, "username": a.username, "by": a.by});
            let made = r
                .ok(Method::POST, "/account-accesses", Some(&body))
                .await?
                .body;
            Box::new(access::AccessAdded {
                client_id: a.client_id,
                username: a.username,
                refresh_token: SecretString::from(text(&made, "refresh_token")?),
                mailed_to: made["mailed_to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect(),
                mail_error: None,
            })
        }
        AccessCmd::List(o) => {
            same_org(r, &o.org).await?;
            let all = every(r, "/account-accesses").await?;
            let mut accesses = all.iter().map(summary).collect::<Result<Vec<_>>>()?;
            accesses.sort_by_key(|a| a.access.created_at);
            Box::new(access::AccessList {
                org: o.org,
                accesses,
            })
        }
        AccessCmd::Delete(a) => {
            same_org(r, &a.org).await?;
            let path = format!(
                "/account-accesses/{}/{}",
                seg(&a.client_id),
                seg(&a.username)
            );
            r.ok(Method::DELETE, &path, None).await?;
            Box::new(access::AccessDeleted {
                client_id: a.client_id,
                username: a.username,
            })
        }
    })
}

async fn keys(r: &Remote, cmd: KeyCmd) -> Result<Box<dyn Report>> {
    Ok(match cmd {
        KeyCmd::Generate(u) => {
            same_org(r, &u.org).await?;
            let path = format!("/users/{}/keys", seg(&u.username));
            let made = r.ok(Method::POST, &path, None).await?.body;
            let slot = made["slot"].as_u64().and_then(|s| u8::try_from(s).ok());
            Box::new(key::KeyGenerated {
                username: u.username,
                key_id: text(&made, "key_id")?,
                slot: slot.ok_or_else(|| CliError::Remote("the answer has no slot".into()))?,
                secret: SecretString::from(text(&made, "secret_key")?),
                bearer: SecretString::from(text(&made, "bearer")?),
            })
        }
        KeyCmd::Delete(a) => {
            same_org(r, &a.org).await?;
            let path = format!("/users/{}/keys/{}", seg(&a.username), a.slot);
            let made = r.ok(Method::DELETE, &path, None).await?.body;
            Box::new(key::KeyDeleted {
                username: a.username,
                deleted_slot: a.slot,
                stops_at: time(&made, "stops_at")?,
                promoted: made["promoted"].as_bool().unwrap_or(false),
            })
        }
    })
}

/// The events since `--since`, oldest first, as the local command lists them.
async fn audit_log(r: &Remote, args: AuditArgs) -> Result<audit::AuditLog> {
    same_org(r, &args.org).await?;
    let path = match args.since {
        Some(s) => {
            let now = grantry_core::Clock::now(&grantry_core::SystemClock);
            let since = audit::parse_since(&s, now)?;
            format!("/audit?from={}", seg(&since.to_rfc3339()))
        }
        None => "/audit".to_string(),
    };
    let mut events = Vec::new();
    for v in every(r, &path).await? {
        events.push(AuditEvent {
            id: v["id"].as_i64().unwrap_or_default(),
            org_id: None,
            at: time(&v, "at")?,
            actor: text(&v, "actor")?,
            action: text(&v, "action")?,
            target: text(&v, "target")?,
            detail: v["detail"].clone(),
            count: v["count"].as_i64().unwrap_or(1),
            last_at: time(&v, "last_at")?,
        });
    }
    events.reverse();
    Ok(audit::AuditLog { events })
}
