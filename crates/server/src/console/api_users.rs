//! API Users: users that only call APIs, each with a Key ID and two secret key slots
//! (API secret key 1 and 2). Generate key fills the free slot and shows the secret once;
//! a deleted key keeps working for `api_keys.delete_grace`, and deleting key 1 makes key 2
//! key 1 (docs/architecture.md, API keys).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use secrecy::ExposeSecret;

use grantry_core::admin::{self, api_keys, UserInput};
use grantry_core::model::{Role, UserKind};
use grantry_core::GrantSet;

use super::settings::{scope_boxes, ConfirmPage, GrantGroup, SecretPage};
use super::users::{checked_grants, user_of, users_of, UserRow};
use super::{when, when_or_never, Chrome, Console, ConsoleForm, Shown};
use crate::error::console::ConsoleError;
use crate::AppState;

const BACK: &str = "/console/api-users";

#[derive(Template)]
#[template(path = "console/api_users.html")]
struct ApiUsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    grants: Vec<GrantGroup>,
}

/// `GET /console/api-users`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let users = users_of(&state, &console, UserKind::Api).await?;
    Ok(console.render(&ApiUsersPage {
        chrome: console.chrome("api-users"),
        users: users.iter().map(UserRow::of).collect(),
        grants: scope_boxes(GrantSet::empty()),
    }))
}

/// `POST /console/api-users`: adds an API user with the checked grants.
pub async fn add(
    State(state): State<AppState>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    console.require_admin()?;
    let grants = match checked_grants(&fields) {
        Ok(g) => g,
        Err(e) => return console.refused(BACK, e),
    };
    let input = UserInput {
        username: fields.text("username"),
        email: fields.text("email"),
        kind: UserKind::Api,
        role: Role::User,
        grants,
        password: None,
    };
    let cx = console.ctx(&state);
    let done = admin::add_user(&cx, &console.org.name, input).await;
    match done {
        Ok(a) => {
            let to = format!("/console/api-users/{}", a.user.username);
            let msg = format!(
                "API user {} added with Key ID {}. Generate key to give it a secret key.",
                a.user.username,
                a.user.key_id.unwrap_or_default()
            );
            Ok(console.redirect(&to, true, &msg))
        }
        Err(e) => console.refused(BACK, e),
    }
}

/// One secret key slot as the page shows it.
struct Slot {
    number: u8,
    created: String,
    last_used: String,
}

/// A deleted key still inside its grace period.
struct Retiring {
    created: String,
    stops: String,
    /// Milliseconds since the epoch, for the countdown.
    stops_ms: i64,
}

#[derive(Template)]
#[template(path = "console/api_user.html")]
struct ApiUserPage {
    chrome: Chrome,
    user: UserRow,
    key_id: String,
    slots: Vec<Slot>,
    retiring: Vec<Retiring>,
    can_generate: bool,
    grants: Vec<GrantGroup>,
}

/// `GET /console/api-users/{username}`.
pub async fn user(
    State(state): State<AppState>,
    console: Console,
    Path(username): Path<String>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let u = user_of(&state, &console, UserKind::Api, &username).await?;
    let cx = console.ctx(&state);
    let (key_id, keys) = api_keys::list(&cx, &console.org.name, &u.username)
        .await
        .map_err(ConsoleError::reading)?;
    let slots: Vec<Slot> = keys
        .iter()
        .filter_map(|k| {
            k.slot.map(|number| Slot {
                number,
                created: when(k.created_at),
                last_used: when_or_never(k.last_used_at),
            })
        })
        .collect();
    let retiring = keys
        .iter()
        .filter(|k| k.slot.is_none())
        .filter_map(|k| {
            k.stops_at.map(|s| Retiring {
                created: when(k.created_at),
                stops: when(s),
                stops_ms: s.0,
            })
        })
        .collect();
    Ok(console.render(&ApiUserPage {
        chrome: console.chrome("api-users"),
        can_generate: slots.len() < 2,
        slots,
        retiring,
        key_id,
        grants: scope_boxes(u.grants),
        user: UserRow::of(&u),
    }))
}

/// `POST /console/api-users/{username}/keys`: Generate key, into the free slot; the secret
/// and the ready `bearer` value are shown on this answer only.
pub async fn generate_key(
    State(state): State<AppState>,
    Path(username): Path<String>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let console = form.console;
    console.require_admin()?;
    let u = user_of(&state, &console, UserKind::Api, &username).await?;
    let back = format!("/console/api-users/{}", u.username);
    let cx = console.ctx(&state);
    let key = match api_keys::generate(&cx, &console.org.name, &u.username).await {
        Ok(k) => k,
        Err(e) => return console.refused(&back, e),
    };
    Ok(console.render(&SecretPage {
        chrome: console.chrome("api-users"),
        title: format!("API secret key {} generated for {}", key.slot, u.username),
        lead: format!("Key ID {}", key.key_id),
        items: vec![
            Shown {
                label: "Secret key",
                id: "secret-key",
                value: key.secret.expose_secret().to_string(),
            },
            Shown {
                label: "Bearer value (Authorization: Bearer ...)",
                id: "bearer",
                value: key.bearer.expose_secret().to_string(),
            },
        ],
        notes: vec![
            "Copy them now: the secret key is shown only once and cannot be shown again.".into(),
        ],
        back,
    }))
}

/// `GET /console/api-users/{username}/keys/{slot}/delete`: when the key stops working.
pub async fn confirm_delete_key(
    State(state): State<AppState>,
    console: Console,
    Path((username, slot)): Path<(String, u8)>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let u = user_of(&state, &console, UserKind::Api, &username).await?;
    let grace = state.settings.api_keys.delete_grace;
    let mut consequences = vec![format!(
        "API secret key {slot} keeps working for {} more (api_keys.delete_grace), then every request with it is refused.",
        human(grace)
    )];
    if slot == 1 {
        consequences.push("API secret key 2, if there is one, becomes API secret key 1.".into());
    }
    Ok(console.render(&ConfirmPage {
        chrome: console.chrome("api-users"),
        title: format!("Delete API secret key {slot} of {}?", u.username),
        consequences,
        action: format!("/console/api-users/{}/keys/{slot}/delete", u.username),
        hidden: vec![],
        button: "Delete",
        back: format!("/console/api-users/{}", u.username),
    }))
}

/// `POST /console/api-users/{username}/keys/{slot}/delete`.
pub async fn delete_key(
    State(state): State<AppState>,
    Path((username, slot)): Path<(String, u8)>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let console = form.console;
    console.require_admin()?;
    let u = user_of(&state, &console, UserKind::Api, &username).await?;
    let back = format!("/console/api-users/{}", u.username);
    let cx = console.ctx(&state);
    let done = api_keys::delete(&cx, &console.org.name, &u.username, slot).await;
    console.outcome(&back, done, |d| {
        let mut m = format!(
            "API secret key {} was deleted; it stops working at {}.",
            d.deleted_slot,
            when(d.stops_at)
        );
        if d.promoted {
            m.push_str(" API secret key 2 is now API secret key 1.");
        }
        m
    })
}

/// A duration in the largest whole unit that fits.
fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86400 && s % 86400 == 0 => format!("{} day(s)", s / 86400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}
