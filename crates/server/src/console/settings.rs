//! Organization Settings → Application Account Access: the org's applications (add, rotate
//! a client secret, delete) and the account accesses that let them act for a user (add,
//! delete), in the words of the product's own screens.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use secrecy::ExposeSecret;

use grantry_core::admin::{self, AdminError, AppInput};
use grantry_core::model::{TokenFormat, UserKind};
use grantry_core::{Grant, GrantSet};

use super::{when, when_or_never, Chrome, Console, ConsoleForm, Shown};
use crate::error::console::ConsoleError;
use crate::AppState;

const BACK: &str = "/console/settings";

/// One row of the applications table.
struct AppRow {
    name: String,
    description: String,
    client_id: String,
    created: String,
    last_used: String,
    kind: &'static str,
}

/// One row of the account accesses table.
struct AccessRow {
    application: String,
    client_id: String,
    username: String,
    created_by: String,
    created: String,
    last_used: String,
    how: &'static str,
}

/// A scope checkbox of the Add Application form.
pub struct ScopeBox {
    pub name: &'static str,
    pub describe: &'static str,
    pub checked: bool,
}

/// The checkboxes of one API family.
pub struct GrantGroup {
    pub family: &'static str,
    pub boxes: Vec<ScopeBox>,
}

/// Every grant as a checkbox, `checked` as in `set`, grouped by API family.
pub fn scope_boxes(set: GrantSet) -> Vec<GrantGroup> {
    boxes_of(GrantSet::all(), set)
}

/// The data APIs' grants as checkboxes: what a UI user may be given (the admin API's come
/// with the org admin role; docs/architecture.md, the admin API).
pub fn data_scope_boxes(set: GrantSet) -> Vec<GrantGroup> {
    boxes_of(GrantSet::apis(), set)
}

fn boxes_of(offered: GrantSet, set: GrantSet) -> Vec<GrantGroup> {
    let mut groups: Vec<GrantGroup> = Vec::new();
    for g in offered.iter() {
        let b = ScopeBox {
            name: g.name(),
            describe: g.describe(),
            checked: set.contains(g),
        };
        match groups.last_mut() {
            Some(last) if last.family == g.family() => last.boxes.push(b),
            _ => groups.push(GrantGroup {
                family: g.family(),
                boxes: vec![b],
            }),
        }
    }
    groups
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
    accesses: Vec<AccessRow>,
    scopes: Vec<GrantGroup>,
    /// (username, label) of the UI users account access can be given for.
    accounts: Vec<(String, String)>,
}

/// `GET /console/settings`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let cx = console.ctx(&state);
    let org = console.org.name.clone();
    let apps = admin::list_applications(&cx, &org)
        .await
        .map_err(ConsoleError::reading)?;
    let accesses = admin::list_account_access(&cx, &org)
        .await
        .map_err(ConsoleError::reading)?;
    let users = admin::list_users(&cx, &org)
        .await
        .map_err(ConsoleError::reading)?;
    let accounts = users
        .into_iter()
        .filter(|u| u.kind == UserKind::Ui && !u.disabled)
        .map(|u| {
            let label = format!("{} ({})", u.username, u.email);
            (u.username, label)
        })
        .collect();
    let apps = apps
        .into_iter()
        .map(|s| AppRow {
            kind: if s.app.public {
                "public"
            } else {
                "confidential"
            },
            name: s.app.name,
            description: s.app.description,
            client_id: s.app.client_id,
            created: when(s.app.created_at),
            last_used: when_or_never(s.last_used_at),
        })
        .collect();
    let accesses = accesses
        .into_iter()
        .map(|a| AccessRow {
            how: if a.created_by.is_some() {
                "admin"
            } else {
                "consent"
            },
            application: a.application,
            client_id: a.client_id,
            username: a.username,
            created_by: a.created_by.unwrap_or_else(|| "(consent)".into()),
            created: when(a.access.created_at),
            last_used: when_or_never(a.last_used_at),
        })
        .collect();
    Ok(console.render(&SettingsPage {
        chrome: console.chrome("settings"),
        apps,
        accesses,
        // The admin API's scopes are offered, never preselected.
        scopes: scope_boxes(GrantSet::apis()),
        accounts,
    }))
}

#[derive(Template)]
#[template(path = "console/secret.html")]
pub struct SecretPage {
    pub chrome: Chrome,
    pub title: String,
    pub lead: String,
    pub items: Vec<Shown>,
    pub notes: Vec<String>,
    pub back: String,
}

/// `POST /console/applications`: Add Application; its Client Id and Client Secret are
/// shown on this answer only.
pub async fn add_application(
    State(state): State<AppState>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    console.require_admin()?;
    let mut scopes = GrantSet::empty();
    for s in fields.all("scope") {
        match Grant::parse(s) {
            Some(g) => scopes.insert(g),
            None => {
                return console.refused(BACK, AdminError::Invalid(format!("{s:?} is not a scope")))
            }
        }
    }
    if scopes.is_empty() {
        let e = AdminError::Invalid("choose at least one scope for the application".into());
        return console.refused(BACK, e);
    }
    let token_format = match fields.get("token_format") {
        Some("jwt") => TokenFormat::Jwt,
        _ => TokenFormat::Opaque,
    };
    let input = AppInput {
        name: fields.text("name"),
        description: fields.text("description"),
        redirect_uris: fields
            .get("redirect_uris")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        scopes: Some(scopes),
        public: fields.get("client_type") == Some("public"),
        rotate_refresh_tokens: fields.checked("rotate_refresh_tokens"),
        token_format,
    };
    let cx = console.ctx(&state);
    let (app, secret) = match admin::add_application(&cx, &console.org.name, input).await {
        Ok(v) => v,
        Err(e) => return console.refused(BACK, e),
    };
    let mut items = vec![Shown {
        label: "Client Id",
        id: "client-id",
        value: app.client_id.clone(),
    }];
    let mut notes = Vec::new();
    match secret {
        Some(s) => {
            items.push(Shown {
                label: "Client Secret",
                id: "client-secret",
                value: s.expose_secret().to_string(),
            });
            notes.push("Copy the Client Secret now: it is shown only once and cannot be shown again. If it is lost, rotate it.".into());
        }
        None => notes.push("A public application has no client secret: it uses PKCE.".into()),
    }
    Ok(console.render(&SecretPage {
        chrome: console.chrome("settings"),
        title: format!("Application {} added", app.name),
        lead: "Give these to the application's developers.".into(),
        items,
        notes,
        back: BACK.into(),
    }))
}

#[derive(Template)]
#[template(path = "console/application.html")]
struct ApplicationPage {
    chrome: Chrome,
    name: String,
    description: String,
    client_id: String,
    kind: &'static str,
    created: String,
    last_used: String,
    redirect_uris: Vec<String>,
    scopes: Vec<&'static str>,
    token_format: &'static str,
    rotates: bool,
    public: bool,
}

/// `GET /console/applications/{client_id}`.
pub async fn application(
    State(state): State<AppState>,
    console: Console,
    Path(client_id): Path<String>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let cx = console.ctx(&state);
    let apps = admin::list_applications(&cx, &console.org.name)
        .await
        .map_err(ConsoleError::reading)?;
    let s = apps
        .into_iter()
        .find(|s| s.app.client_id == client_id)
        .ok_or(ConsoleError::NotFound)?;
    Ok(console.render(&ApplicationPage {
        chrome: console.chrome("settings"),
        kind: if s.app.public {
            "public"
        } else {
            "confidential"
        },
        public: s.app.public,
        created: when(s.app.created_at),
        last_used: when_or_never(s.last_used_at),
        redirect_uris: s.app.redirect_uris.clone(),
        scopes: s.app.scopes.iter().map(Grant::name).collect(),
        token_format: match s.app.token_format {
            TokenFormat::Jwt => "JWT (RFC 9068)",
            TokenFormat::Opaque => "opaque",
        },
        rotates: s.app.rotate_refresh_tokens,
        name: s.app.name,
        description: s.app.description,
        client_id: s.app.client_id,
    }))
}

/// The overlaps a client secret rotation offers: how long the old secrets keep working.
const OVERLAPS: [(&str, u64); 5] = [
    ("0s", 0),
    ("1h", 3600),
    ("24h", 24 * 3600),
    ("7d", 7 * 24 * 3600),
    ("30d", 30 * 24 * 3600),
];

/// `POST /console/applications/{client_id}/rotate`: a new client secret, shown on this
/// answer only; the old ones keep working for the chosen overlap.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    console.require_admin()?;
    let back = format!("/console/applications/{client_id}");
    let overlap = fields.get("overlap").unwrap_or("0s");
    let Some((_, secs)) = OVERLAPS.iter().find(|(k, _)| *k == overlap) else {
        let e = AdminError::Invalid(format!("{overlap:?} is not one of the offered overlaps"));
        return console.refused(&back, e);
    };
    let cx = console.ctx(&state);
    let rotated = admin::rotate_client_secret(
        &cx,
        &console.org.name,
        &client_id,
        Duration::from_secs(*secs),
    )
    .await;
    let (secret, old_until) = match rotated {
        Ok(v) => v,
        Err(e) => return console.refused(&back, e),
    };
    Ok(console.render(&SecretPage {
        chrome: console.chrome("settings"),
        title: "New client secret".into(),
        lead: format!("Application {client_id} has a new client secret."),
        items: vec![Shown {
            label: "Client Secret",
            id: "client-secret",
            value: secret.expose_secret().to_string(),
        }],
        notes: vec![
            "Copy it now: it is shown only once.".into(),
            format!("The previous secrets stop working at {}.", when(old_until)),
        ],
        back,
    }))
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub title: String,
    pub consequences: Vec<String>,
    pub action: String,
    pub hidden: Vec<(&'static str, String)>,
    pub button: &'static str,
    pub back: String,
}

/// `GET /console/applications/{client_id}/delete`: what deleting it stops.
pub async fn confirm_delete(
    State(state): State<AppState>,
    console: Console,
    Path(client_id): Path<String>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let cx = console.ctx(&state);
    let app = admin::find_application(&cx, &console.org.name, &client_id)
        .await
        .map_err(ConsoleError::reading)?;
    let accesses = admin::list_account_access(&cx, &console.org.name)
        .await
        .map_err(ConsoleError::reading)?
        .into_iter()
        .filter(|a| a.client_id == client_id)
        .count();
    // Client ids are UUIDs: safe in a path as they are.
    let path = &client_id;
    Ok(console.render(&ConfirmPage {
        chrome: console.chrome("settings"),
        title: format!("Delete application {}?", app.name),
        consequences: vec![
            "Its client id and client secrets stop working at once.".into(),
            format!("Its {accesses} account access(es) are deleted, and every refresh and access token they issued is refused from the next request on."),
            "This cannot be undone: a new application gets a new client id.".into(),
        ],
        action: format!("/console/applications/{path}/delete"),
        hidden: vec![],
        button: "Delete",
        back: format!("/console/applications/{path}"),
    }))
}

/// `POST /console/applications/{client_id}/delete`.
pub async fn delete_application(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let console = form.console;
    console.require_admin()?;
    let cx = console.ctx(&state);
    let done = admin::delete_application(&cx, &console.org.name, &client_id).await;
    console.outcome(BACK, done, |()| {
        format!("Application {client_id} was deleted.")
    })
}

/// `POST /console/access`: Add Account Access for an Application and a user Account; the
/// refresh token is shown on this answer only, and mailed as the CLI mails it.
pub async fn add_access(
    State(state): State<AppState>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    console.require_admin()?;
    let (client_id, username) = (fields.text("application"), fields.text("account"));
    let cx = console.ctx(&state);
    let added = admin::add_account_access(
        &cx,
        &*state.mailer,
        &console.org.name,
        &client_id,
        &username,
        &console.user.username,
    )
    .await;
    let added = match added {
        Ok(a) => a,
        Err(e) => return console.refused(BACK, e),
    };
    let mut notes = vec!["Copy the refresh token now: it is shown only once. The application trades it at /oauth/token for 4-hour access tokens.".to_string()];
    match &added.mail_error {
        None => notes.push(format!("Mailed to {}.", added.mailed_to.join(", "))),
        Some(e) => notes.push(format!("The notification mail could not be sent: {e}")),
    }
    Ok(console.render(&SecretPage {
        chrome: console.chrome("settings"),
        title: format!(
            "Account access added: {} for {}",
            added.application.name, added.user.username
        ),
        lead: format!("Client Id {}", added.application.client_id),
        items: vec![Shown {
            label: "Refresh token",
            id: "refresh-token",
            value: added.refresh_token.expose_secret().to_string(),
        }],
        notes,
        back: BACK.into(),
    }))
}

/// Which account access a delete names.
#[derive(serde::Deserialize)]
pub struct AccessKey {
    client_id: String,
    username: String,
}

/// `GET /console/access/delete?client_id=...&username=...`.
pub async fn confirm_delete_access(
    State(state): State<AppState>,
    console: Console,
    Query(key): Query<AccessKey>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let cx = console.ctx(&state);
    let found = admin::list_account_access(&cx, &console.org.name)
        .await
        .map_err(ConsoleError::reading)?
        .into_iter()
        .find(|a| a.client_id == key.client_id && a.username == key.username)
        .ok_or(ConsoleError::NotFound)?;
    Ok(console.render(&ConfirmPage {
        chrome: console.chrome("settings"),
        title: format!(
            "Delete account access of {} for {}?",
            found.application, found.username
        ),
        consequences: vec![
            "Its refresh token and every access token it issued are refused from the next request on.".into(),
            "The application can act for this user again only with a new account access.".into(),
        ],
        action: "/console/access/delete".into(),
        hidden: vec![("client_id", key.client_id), ("username", key.username)],
        button: "Delete",
        back: BACK.into(),
    }))
}

/// `POST /console/access/delete`: revokes at once.
pub async fn delete_access(
    State(state): State<AppState>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    console.require_admin()?;
    let (client_id, username) = (fields.text("client_id"), fields.text("username"));
    let cx = console.ctx(&state);
    let done = admin::delete_account_access(&cx, &console.org.name, &client_id, &username).await;
    console.outcome(BACK, done, |()| {
        format!("Account access of {client_id} for {username} was deleted; its tokens are refused.")
    })
}
