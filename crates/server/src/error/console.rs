//! The admin console's refusals: pages for people, never protocol bodies. A signed-out
//! browser is sent to the sign-in page; a refused action goes back to its page with the
//! reason as a flash message (`crate::console`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use grantry_core::admin::AdminError;
use grantry_core::StoreError;

use crate::pages;

/// Why a console request was not served.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live session (never signed in, signed out, idle or expired): to the sign-in page.
    SignedOut,
    /// Signed in with a one-time password: to the page that sets a new one first.
    MustChangePassword,
    /// A form without this session's CSRF token (another site's, or an expired page's).
    Csrf,
    /// The signed-in user may not do this (a `user`-role account on an admin page).
    Forbidden,
    /// Nothing of that name in the signed-in user's organization.
    NotFound,
    /// A form that could not be read.
    BadForm(String),
    /// The store failed; logged, never shown.
    Store(StoreError),
}

impl ConsoleError {
    /// An admin operation's failure on a page that only reads: the store's is the console's
    /// error; any other (the org or the named thing is not the signed-in user's) is not found.
    pub fn reading(e: AdminError) -> ConsoleError {
        match e {
            AdminError::Store(e) => ConsoleError::Store(e),
            _ => ConsoleError::NotFound,
        }
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Store(e)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::SignedOut => pages::see_other("/console/sign-in"),
            ConsoleError::MustChangePassword => pages::see_other("/console/password"),
            ConsoleError::Csrf => pages::console_error(
                StatusCode::FORBIDDEN,
                "This form cannot be sent",
                "This form has expired or did not come from the console. Go back, reload the page and try again.",
            ),
            ConsoleError::Forbidden => pages::console_error(
                StatusCode::FORBIDDEN,
                "Only org admins can open this page",
                "Your account can use My account only. Ask an org admin of your organization for what you need.",
            ),
            ConsoleError::NotFound => pages::console_error(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page in your organization.",
            ),
            ConsoleError::BadForm(why) => {
                pages::console_error(StatusCode::BAD_REQUEST, "The form could not be read", &why)
            }
            ConsoleError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "console request: the database is unavailable");
                pages::console_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again in a moment",
                    "The console cannot reach its database just now. Nothing was changed; try again in a moment.",
                )
            }
            ConsoleError::Store(e) => {
                tracing::error!(error = %e, "console request failed in the store");
                pages::console_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The console could not reach its database. Try again in a moment.",
                )
            }
        }
    }
}
