//! The admin commands: each opens the store, calls one core admin operation and prints the
//! result, as text or (`--json`) with exactly the field names of DESIGN.md §6.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use grantry_core::admin::api_keys as apikey;
use grantry_core::admin::{self, AppInput, Ctx, UserInput};
use grantry_core::model::{Role, UserKind};
use grantry_core::{Clock, Grant, GrantSet, Store, SystemClock, Timestamp};

use crate::cli::*;
use crate::config::{parse_duration, Config, Overrides};
use crate::error::{CliError, Result};
use crate::mailer::LettreMailer;

/// Prints an error the way the caller asked for, and picks the exit code.
pub fn fail(json: bool, err: &CliError) -> ExitCode {
    if json {
        eprintln!("{}", json!({ "error": err.to_string() }));
    } else {
        eprintln!("error: {err}");
    }
    ExitCode::FAILURE
}

fn emit(json: bool, value: Value, human: String) {
    if json {
        println!("{value}");
    } else {
        println!("{human}");
    }
}

/// Opens the configured store, creating the data folder for SQLite.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>> {
    if cfg.is_sqlite() {
        let path = cfg.data_dir();
        std::fs::create_dir_all(&path).map_err(|err| CliError::DataFolder { path, err })?;
    }
    Ok(grantry_store::open(&cfg.database_url()).await?)
}

fn parse_grant(name: &str) -> Result<Grant> {
    Grant::parse(name).ok_or_else(|| CliError::UnknownGrant(name.into()))
}

fn parse_grants(names: &[String]) -> Result<GrantSet> {
    names.iter().map(|n| parse_grant(n)).collect()
}

fn parse_since(s: &str, now: Timestamp) -> Result<Timestamp> {
    Timestamp::parse_rfc3339(s)
        .or_else(|| parse_duration(s).ok().map(|d| now.minus(d)))
        .ok_or_else(|| CliError::Since(s.into()))
}

pub async fn run(cli: Cli) -> Result<()> {
    let flags = Overrides {
        database_url: cli.database.clone(),
        data: cli.data.clone(),
        listen: match &cli.command {
            Command::Serve { listen } => listen.clone(),
            _ => None,
        },
    };
    let cfg = Config::load(cli.config.as_deref(), &flags).map_err(CliError::config)?;
    let settings = cfg.settings().map_err(CliError::config)?;
    if let Command::Serve { .. } = cli.command {
        return crate::serve::run(cfg, settings).await;
    }
    let store = open_store(&cfg).await?;
    let clock = SystemClock;
    let cx = Ctx {
        store: &*store,
        now: clock.now(),
        settings: &settings,
        actor: "cli",
    };
    admin_command(&cx, &cfg, cli.json, cli.command).await
}

async fn admin_command(cx: &Ctx<'_>, cfg: &Config, json: bool, cmd: Command) -> Result<()> {
    match cmd {
        Command::Serve { .. } => unreachable!("handled by run"),
        Command::Org(OrgCmd::Create { name, admin, email }) => {
            let c = admin::create_org(cx, &name, &admin, &email).await?;
            let pw = c.password.expose_secret();
            emit(
                json,
                json!({"org": c.org.name, "admin": c.admin.username, "password": pw}),
                format!(
                    "Created organization {} with principal org admin {}.\nOne-time password (shown once): {pw}",
                    c.org.name, c.admin.username
                ),
            );
        }
        Command::User(UserCmd::Add {
            org,
            username,
            email,
            kind,
            role,
            grants,
            password_stdin,
        }) => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(CliError::PasswordStdin)?;
                Some(SecretString::from(
                    line.trim_end_matches(['\r', '\n']).to_string(),
                ))
            } else {
                None
            };
            let input = UserInput {
                username,
                email,
                kind: match kind {
                    KindArg::Ui => UserKind::Ui,
                    KindArg::Api => UserKind::Api,
                },
                role: match role {
                    RoleArg::OrgAdmin => Role::OrgAdmin,
                    RoleArg::User => Role::User,
                },
                grants: parse_grants(&grants)?,
                password,
            };
            let added = admin::add_user(cx, &org, input).await?;
            let u = &added.user;
            let mut v = json!({"org": org, "username": u.username, "kind": u.kind.as_str()});
            let mut human = format!(
                "Added {} user {} to {org}.",
                u.kind.as_str().to_uppercase(),
                u.username
            );
            if let Some(k) = &u.key_id {
                v["key_id"] = k.clone().into();
                human.push_str(&format!(
                    "\nKey ID: {k}\nGenerate its secret keys with `grantry key generate`."
                ));
            }
            if let Some(p) = &added.password {
                v["password"] = p.expose_secret().into();
                human.push_str(&format!(
                    "\nOne-time password (shown once): {}",
                    p.expose_secret()
                ));
            }
            emit(json, v, human);
        }
        Command::User(cmd @ (UserCmd::Grant(_) | UserCmd::Revoke(_))) => {
            let (on, a) = match cmd {
                UserCmd::Grant(a) => (true, a),
                UserCmd::Revoke(a) => (false, a),
                _ => unreachable!("matched above"),
            };
            let g = parse_grant(&a.grant)?;
            let u = admin::set_grant(cx, &a.org, &a.username, g, on).await?;
            emit(
                json,
                json!({"org": a.org, "username": u.username, "grants": u.grants.names()}),
                format!(
                    "{} now holds: {}",
                    u.username,
                    if u.grants.is_empty() {
                        "no grants".into()
                    } else {
                        u.grants.to_scope()
                    }
                ),
            );
        }
        Command::User(cmd @ (UserCmd::Disable(_) | UserCmd::Enable(_))) => {
            let (disabled, u) = match cmd {
                UserCmd::Disable(u) => (true, u),
                UserCmd::Enable(u) => (false, u),
                _ => unreachable!("matched above"),
            };
            let user = admin::set_disabled(cx, &u.org, &u.username, disabled).await?;
            let word = if disabled {
                "disabled; its credentials no longer work"
            } else {
                "enabled"
            };
            emit(
                json,
                json!({"org": u.org, "username": user.username, "disabled": user.disabled}),
                format!("{} is {word}.", user.username),
            );
        }
        Command::User(UserCmd::Delete(u)) => {
            admin::delete_user(cx, &u.org, &u.username).await?;
            emit(
                json,
                json!({"org": u.org, "username": u.username, "deleted": true}),
                format!(
                    "Deleted {} with its keys, account accesses and tokens.",
                    u.username
                ),
            );
        }
        Command::Key(KeyCmd::Generate(u)) => {
            let k = apikey::generate(cx, &u.org, &u.username).await?;
            let (secret, bearer) = (k.secret.expose_secret(), k.bearer.expose_secret());
            emit(
                json,
                json!({"key_id": k.key_id, "slot": k.slot, "secret": secret, "bearer": bearer}),
                format!(
                    "Generated secret key {slot} for {user}.\nKey ID: {id}\nSlot: {slot}\nSecret key (shown once): {secret}\n\
                     Use it as: Authorization: Bearer {bearer}",
                    slot = k.slot,
                    user = u.username,
                    id = k.key_id
                ),
            );
        }
        Command::Key(KeyCmd::Delete {
            org,
            username,
            slot,
        }) => {
            let d = apikey::delete(cx, &org, &username, slot).await?;
            let stops = d.stops_at.to_rfc3339();
            let mut human = format!("Deleted secret key {slot} of {username}. It keeps working until {stops}, then stops everywhere.");
            if d.promoted {
                human.push_str("\nThe key in slot 2 is now key 1.");
            }
            emit(
                json,
                json!({"deleted_slot": d.deleted_slot, "stops_at": stops, "promoted": d.promoted}),
                human,
            );
        }
        Command::App(AppCmd::Add {
            org,
            name,
            description,
            redirect_uris,
            scopes,
            public,
            rotate_refresh_tokens,
            token_format,
        }) => {
            let input = AppInput {
                name,
                description,
                redirect_uris,
                scopes: if scopes.is_empty() {
                    None
                } else {
                    Some(parse_grants(&scopes)?)
                },
                public,
                rotate_refresh_tokens,
                token_format: match token_format {
                    TokenFormatArg::Opaque => grantry_core::model::TokenFormat::Opaque,
                    TokenFormatArg::Jwt => grantry_core::model::TokenFormat::Jwt,
                },
            };
            let (app, secret) = admin::add_application(cx, &org, input).await?;
            let mut v = json!({"client_id": app.client_id});
            let mut human = format!(
                "Registered application {:?} in {org}.\nClient ID: {}",
                app.name, app.client_id
            );
            if let Some(s) = &secret {
                v["client_secret"] = s.expose_secret().into();
                human.push_str(&format!(
                    "\nClient secret (shown once): {}",
                    s.expose_secret()
                ));
            }
            emit(json, v, human);
        }
        Command::App(AppCmd::RotateSecret {
            org,
            client_id,
            overlap,
        }) => {
            let overlap = parse_duration(&overlap).map_err(|e| CliError::Overlap(e.to_string()))?;
            let (secret, until) =
                admin::rotate_client_secret(cx, &org, &client_id, overlap).await?;
            let (secret, until) = (secret.expose_secret(), until.to_rfc3339());
            emit(
                json,
                json!({"client_id": client_id, "client_secret": secret, "old_secret_expires_at": until}),
                format!(
                    "New client secret for {client_id} (shown once): {secret}\nThe previous secret keeps working until {until}."
                ),
            );
        }
        Command::Access(AccessCmd::Add {
            org,
            client_id,
            username,
            by,
        }) => {
            let mailer = LettreMailer::new(
                cfg.mail.smtp_url.as_deref(),
                &cfg.mail.from,
                &cfg.data_dir(),
            )
            .map_err(CliError::Mail)?;
            let a =
                admin::add_account_access(cx, &mailer, &org, &client_id, &username, &by).await?;
            let rt = a.refresh_token.expose_secret();
            let mut human = format!(
                "Added account access for {username} to application {client_id}.\nRefresh token (shown once): {rt}\nMailed to: {}",
                a.mailed_to.join(", ")
            );
            if let Some(err) = &a.mail_error {
                eprintln!(
                    "warning: the account access was added but the e-mail was not sent: {err}"
                );
                human.push_str(" (not delivered)");
            }
            emit(
                json,
                json!({"client_id": client_id, "username": username, "refresh_token": rt}),
                human,
            );
        }
        Command::Access(AccessCmd::List { org }) => {
            let all = admin::list_account_access(cx, &org).await?;
            if json {
                let rows: Vec<Value> = all
                    .iter()
                    .map(|a| {
                        json!({
                            "client_id": a.client_id, "application": a.application, "username": a.username,
                            "added_by": a.created_by, "scopes": a.access.scopes.names(),
                            "created_at": a.access.created_at.to_rfc3339(),
                        })
                    })
                    .collect();
                println!("{}", Value::Array(rows));
            } else if all.is_empty() {
                println!("No account access in {org}.");
            } else {
                for a in all {
                    let by = a
                        .created_by
                        .map_or("consent".to_string(), |b| format!("added by {b}"));
                    println!(
                        "{}  {:<24} {:<36} {:<16} {by}",
                        a.access.created_at.to_rfc3339(),
                        a.application,
                        a.client_id,
                        a.username
                    );
                }
            }
        }
        Command::Access(AccessCmd::Delete {
            org,
            client_id,
            username,
        }) => {
            admin::delete_account_access(cx, &org, &client_id, &username).await?;
            emit(
                json,
                json!({"client_id": client_id, "username": username, "deleted": true}),
                format!("Deleted account access for {username} to application {client_id}; its tokens no longer work."),
            );
        }
        Command::Audit { org, since } => {
            let since = since.map(|s| parse_since(&s, cx.now)).transpose()?;
            let events = admin::audit_log(cx, &org, since).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&events).map_err(CliError::Json)?
                );
            } else if events.is_empty() {
                println!("No audit events.");
            } else {
                for ev in events {
                    let detail = if ev.detail.is_null() {
                        String::new()
                    } else {
                        format!(" {}", ev.detail)
                    };
                    println!(
                        "{}  {:<28} {:<24} {}{detail}",
                        ev.at.to_rfc3339(),
                        ev.action,
                        ev.actor,
                        ev.target
                    );
                }
            }
        }
    }
    Ok(())
}
