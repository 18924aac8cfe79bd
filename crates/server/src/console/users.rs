//! Users: the org's UI users (add, role, grants, disable and enable, reset password,
//! delete). API users have their own screen (`api_users`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use secrecy::ExposeSecret;

use grantry_core::admin::{self, AdminError, UserInput};
use grantry_core::model::{Role, User, UserKind};
use grantry_core::{Grant, GrantSet};

use super::settings::{data_scope_boxes, ConfirmPage, GrantGroup, SecretPage};
use super::{when, Chrome, Console, ConsoleForm, Fields, Shown};
use crate::error::console::ConsoleError;
use crate::AppState;

const BACK: &str = "/console/users";

/// One row of a users table.
pub struct UserRow {
    pub username: String,
    pub email: String,
    pub role: &'static str,
    pub grants: String,
    pub status: &'static str,
    pub created: String,
}

impl UserRow {
    pub fn of(u: &User) -> Self {
        UserRow {
            username: u.username.clone(),
            email: u.email.clone(),
            role: match u.role {
                Role::OrgAdmin => "org admin",
                Role::User => "user",
            },
            grants: match u.role {
                Role::OrgAdmin => "all".into(),
                Role::User if u.grants.is_empty() => "none".into(),
                Role::User => u.grants.names().join(", "),
            },
            status: if u.disabled { "disabled" } else { "active" },
            created: when(u.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    grants: Vec<GrantGroup>,
}

/// Every user of the console's org of `kind`, or the console's error.
pub async fn users_of(
    state: &AppState,
    console: &Console,
    kind: UserKind,
) -> Result<Vec<User>, ConsoleError> {
    let cx = console.ctx(state);
    let all = admin::list_users(&cx, &console.org.name)
        .await
        .map_err(ConsoleError::reading)?;
    Ok(all.into_iter().filter(|u| u.kind == kind).collect())
}

/// The user `username` of kind `kind` in the console's org: another org's, or one of the
/// other kind, is not found.
pub async fn user_of(
    state: &AppState,
    console: &Console,
    kind: UserKind,
    username: &str,
) -> Result<User, ConsoleError> {
    let u = any_user_of(state, console, username).await?;
    match u.kind == kind {
        true => Ok(u),
        false => Err(ConsoleError::NotFound),
    }
}

/// The user `username`, UI or API, in the console's org.
async fn any_user_of(
    state: &AppState,
    console: &Console,
    username: &str,
) -> Result<User, ConsoleError> {
    let cx = console.ctx(state);
    admin::find_user(&cx, &console.org.name, username)
        .await
        .map_err(ConsoleError::reading)
}

/// The page of a user: the Users screen's for a UI user, the API Users screen's for an API
/// user.
fn page_of(u: &User) -> String {
    match u.kind {
        UserKind::Ui => format!("/console/users/{}", u.username),
        UserKind::Api => format!("/console/api-users/{}", u.username),
    }
}

/// `GET /console/users`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let users = users_of(&state, &console, UserKind::Ui).await?;
    Ok(console.render(&UsersPage {
        chrome: console.chrome("users"),
        users: users.iter().map(UserRow::of).collect(),
        grants: data_scope_boxes(GrantSet::empty()),
    }))
}

/// The grants checked in a form's `grant` boxes.
pub fn checked_grants(fields: &Fields) -> Result<GrantSet, AdminError> {
    let mut set = GrantSet::empty();
    for g in fields.all("grant") {
        let grant =
            Grant::parse(g).ok_or_else(|| AdminError::Invalid(format!("{g:?} is not a grant")))?;
        set.insert(grant);
    }
    Ok(set)
}

/// `POST /console/users`: adds a UI user; the one-time password is shown on this answer
/// only, and asked to be changed at the first sign-in.
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
    let role = match fields.get("role") {
        Some("org_admin") => Role::OrgAdmin,
        _ => Role::User,
    };
    let input = UserInput {
        username: fields.text("username"),
        email: fields.text("email"),
        kind: UserKind::Ui,
        role,
        grants,
        password: None,
    };
    let cx = console.ctx(&state);
    let added = match admin::add_user(&cx, &console.org.name, input).await {
        Ok(a) => a,
        Err(e) => return console.refused(BACK, e),
    };
    let password = added
        .password
        .map(|p| p.expose_secret().to_string())
        .unwrap_or_default();
    Ok(console.render(&SecretPage {
        chrome: console.chrome("users"),
        title: format!("User {} added", added.user.username),
        lead: format!(
            "Give {} this one-time password; the console asks for a new one at the first sign-in (organization {}).",
            added.user.username, console.org.name
        ),
        items: vec![Shown {
            label: "One-time password",
            id: "one-time-password",
            value: password,
        }],
        notes: vec!["It is shown only once. If it is lost, reset the password.".into()],
        back: BACK.into(),
    }))
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserRow,
    admin_role: bool,
    principal: bool,
    disabled: bool,
    grants: Vec<GrantGroup>,
}

/// `GET /console/users/{username}`.
pub async fn user(
    State(state): State<AppState>,
    console: Console,
    Path(username): Path<String>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let u = user_of(&state, &console, UserKind::Ui, &username).await?;
    Ok(console.render(&UserPage {
        chrome: console.chrome("users"),
        admin_role: u.role == Role::OrgAdmin,
        principal: u.principal,
        disabled: u.disabled,
        grants: data_scope_boxes(u.effective_grants()),
        user: UserRow::of(&u),
    }))
}

/// `POST /console/users/{username}/{action}`: `role`, `grants`, `disable`, `enable` or
/// `reset-password`.
pub async fn act(
    State(state): State<AppState>,
    Path((username, action)): Path<(String, String)>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    console.require_admin()?;
    let u = any_user_of(&state, &console, &username).await?;
    let back = page_of(&u);
    if u.kind == UserKind::Api && action != "grants" {
        return Err(ConsoleError::NotFound);
    }
    let cx = console.ctx(&state);
    let org = console.org.name.clone();
    match action.as_str() {
        "role" => {
            let role = match fields.get("role") {
                Some("org_admin") => Role::OrgAdmin,
                _ => Role::User,
            };
            let done = admin::set_role(&cx, &org, &username, role).await;
            console.outcome(&back, done, |u| {
                format!("{} is now {}.", u.username, UserRow::of(&u).role)
            })
        }
        "grants" => {
            let wanted = match checked_grants(&fields) {
                Ok(g) => g,
                Err(e) => return console.refused(&back, e),
            };
            for g in GrantSet::apis().iter() {
                let (has, wants) = (u.grants.contains(g), wanted.contains(g));
                if has != wants {
                    if let Err(e) = admin::set_grant(&cx, &org, &username, g, wants).await {
                        return console.refused(&back, e);
                    }
                }
            }
            Ok(console.redirect(
                &back,
                true,
                &format!("The grants of {username} were saved."),
            ))
        }
        "disable" | "enable" => {
            let disabled = action == "disable";
            let done = admin::set_disabled(&cx, &org, &username, disabled).await;
            console.outcome(&back, done, |u| match u.disabled {
                true => format!(
                    "{} is disabled: their sessions, tokens and account accesses stop working.",
                    u.username
                ),
                false => format!("{} is enabled again.", u.username),
            })
        }
        "reset-password" => {
            let password = match admin::reset_password(&cx, &org, &username).await {
                Ok(p) => p,
                Err(e) => return console.refused(&back, e),
            };
            Ok(console.render(&SecretPage {
                chrome: console.chrome("users"),
                title: format!("Password of {username} reset"),
                lead: format!("Give {username} this one-time password; their sessions have ended, and the console asks for a new password at the next sign-in."),
                items: vec![Shown {
                    label: "One-time password",
                    id: "one-time-password",
                    value: password.expose_secret().to_string(),
                }],
                notes: vec!["It is shown only once.".into()],
                back,
            }))
        }
        _ => Err(ConsoleError::NotFound),
    }
}

/// `GET /console/users/{username}/delete`: what deleting the user stops.
pub async fn confirm_delete(
    State(state): State<AppState>,
    console: Console,
    Path(username): Path<String>,
) -> Result<Response, ConsoleError> {
    console.require_admin()?;
    let u = any_user_of(&state, &console, &username).await?;
    let (section, consequences) = match u.kind {
        UserKind::Ui => ("users", vec![
            "They can no longer sign in; their sessions end at once.".to_string(),
            "Every account access for them is deleted, and the tokens applications hold for them are refused from the next request on.".into(),
        ]),
        UserKind::Api => ("api-users", vec![
            "Both secret keys and every token obtained with them are refused from the next request on, without a grace period.".to_string(),
        ]),
    };
    Ok(console.render(&ConfirmPage {
        chrome: console.chrome(section),
        title: format!("Delete user {}?", u.username),
        consequences,
        action: format!("/console/users/{}/delete", u.username),
        hidden: vec![],
        button: "Delete",
        back: page_of(&u),
    }))
}

/// `POST /console/users/{username}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(username): Path<String>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let console = form.console;
    console.require_admin()?;
    let u = any_user_of(&state, &console, &username).await?;
    let list = match u.kind {
        UserKind::Ui => BACK,
        UserKind::Api => "/console/api-users",
    };
    let cx = console.ctx(&state);
    let done = admin::delete_user(&cx, &console.org.name, &u.username).await;
    match done {
        Ok(()) => Ok(console.redirect(list, true, &format!("User {username} was deleted."))),
        Err(e) => console.refused(&page_of(&u), e),
    }
}
