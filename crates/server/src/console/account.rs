//! My account, for every UI user: their profile, a password change, and the applications
//! that may act for them, each of which they can withdraw (as an admin's delete does).

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use grantry_core::admin;

use super::users::UserRow;
use super::{when, when_or_never, Chrome, Console, ConsoleForm};
use crate::error::console::ConsoleError;
use crate::AppState;

const BACK: &str = "/console/account";

struct Consent {
    application: String,
    client_id: String,
    how: &'static str,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    chrome: Chrome,
    user: UserRow,
    consents: Vec<Consent>,
}

/// `GET /console/account`.
pub async fn page(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, ConsoleError> {
    let cx = console.ctx(&state);
    let all = admin::list_account_access(&cx, &console.org.name)
        .await
        .map_err(ConsoleError::reading)?;
    let consents = all
        .into_iter()
        .filter(|a| a.username == console.user.username)
        .map(|a| Consent {
            how: if a.created_by.is_some() {
                "given by an admin"
            } else {
                "your consent"
            },
            application: a.application,
            client_id: a.client_id,
            created: when(a.access.created_at),
            last_used: when_or_never(a.last_used_at),
        })
        .collect();
    Ok(console.render(&AccountPage {
        chrome: console.chrome("account"),
        user: UserRow::of(&console.user),
        consents,
    }))
}

/// `POST /console/account/consents/delete`: withdraws an application's access to the
/// signed-in user; its tokens are refused from the next request on.
pub async fn withdraw(
    State(state): State<AppState>,
    form: ConsoleForm,
) -> Result<Response, ConsoleError> {
    let ConsoleForm { console, fields } = form;
    let client_id = fields.text("client_id");
    let cx = console.ctx(&state);
    let username = console.user.username.clone();
    let done = admin::delete_account_access(&cx, &console.org.name, &client_id, &username).await;
    console.outcome(BACK, done, |()| {
        format!("Application {client_id} can no longer act for you.")
    })
}
