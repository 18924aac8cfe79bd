//! Org-admin operations (docs/architecture.md, running it), one file per noun, shared by the CLI and the
//! console: each validates its input, acts in one store transaction together with its audit
//! record, and returns what the caller must show once.

pub mod account_access;
pub mod api_keys;
pub mod applications;
pub mod audit_log;
pub mod idempotency;
pub mod orgs;
pub mod passwords;
pub mod users;

pub use account_access::{
    add_account_access, delete_account_access, list_account_access, AddedAccess,
};
pub use applications::{
    add_application, delete_application, find_application, list_applications, rotate_client_secret,
    update_application, AppChange, AppInput,
};
pub use audit_log::{audit_log, audit_page};
pub use idempotency::{replayed, Idempotency};
pub use orgs::{create_org, CreatedOrg};
pub use passwords::{change_password, reset_password, PasswordChange};
pub use users::{
    add_user, delete_user, find_user, list_users, set_disabled, set_grant, set_role, update_user,
    AddedUser, UserChange, UserInput,
};

use crate::clock::Timestamp;
use crate::credential::password::HashError;
use crate::model::{Application, Org, OrgId, User};
use crate::settings::Settings;
use crate::store::{NewAudit, Store, StoreError};
use crate::validate::storable;

/// Why an admin operation failed; the message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The caller's condition on the current state (an HTTP `If-Match`) does not hold: the
    /// thing changed since the caller read it.
    #[error("{0}")]
    Stale(String),
    /// An idempotency key used again for a different request.
    #[error("{0}")]
    KeyReused(String),
    #[error(transparent)]
    Password(#[from] HashError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(idempotency::WHAT) => conflict(e, String::new),
            StoreError::Conflict(what) => AdminError::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => AdminError::NotFound(format!("{what} not found")),
            e => AdminError::Store(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, AdminError>;

/// Who acts, when, with what.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    /// The time of the request, read once.
    pub now: Timestamp,
    pub settings: &'a Settings,
    /// Recorded as the audit actor (`cli`, or the console user's name).
    pub actor: &'a str,
    /// The request the change was made by (the admin API's `X-Request-Id`), recorded in the
    /// detail of its audit event.
    pub request_id: Option<&'a str>,
    /// A create retried under this key is made once ([`idempotency`]).
    pub idempotency: Option<&'a Idempotency>,
}

impl Ctx<'_> {
    pub(crate) fn audit(
        &self,
        org: Option<OrgId>,
        action: &'static str,
        target: String,
    ) -> NewAudit {
        let mut audit = NewAudit::new(org, self.now, self.actor, action, target);
        if let Some(id) = self.request_id {
            audit = audit.with_detail(serde_json::json!({ "request_id": id }));
        }
        if let (Some(key), Some(org)) = (self.idempotency, org) {
            audit.idempotency = Some(key.record(org));
        }
        audit
    }

    pub(crate) async fn org(&self, name: &str) -> Result<Org> {
        let found = match storable(name) {
            true => self.store.org_by_name(name).await?,
            false => None,
        };
        found.ok_or_else(|| {
            AdminError::NotFound(format!(
                "organization {name:?} not found; create it with `grantry org create --name {name} ...`"
            ))
        })
    }

    pub(crate) async fn user(&self, org: &Org, username: &str) -> Result<User> {
        let found = match storable(username) {
            true => self.store.user_by_username(org.id, username).await?,
            false => None,
        };
        found.ok_or_else(|| {
            AdminError::NotFound(format!(
                "user {username:?} not found in organization {}; add it with `grantry user add`",
                org.name
            ))
        })
    }

    pub(crate) async fn app(&self, org: &Org, client_id: &str) -> Result<Application> {
        let found = match storable(client_id) {
            true => self.store.application_by_client_id(client_id).await?,
            false => None,
        };
        match found {
            Some(app) if app.org_id == org.id => Ok(app),
            _ => Err(AdminError::NotFound(format!(
                "no application with client id {client_id} in organization {}",
                org.name
            ))),
        }
    }
}

pub(crate) fn validate_name(what: &str, s: &str) -> Result<()> {
    if crate::validate::name(s) {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{what} {s:?} must be 1-64 characters of letters, digits, '-', '_', '.', '@'"
        )))
    }
}

pub(crate) fn validate_email(s: &str) -> Result<String> {
    crate::validate::email(s)
        .ok_or_else(|| AdminError::Invalid(format!("{s:?} is not a valid e-mail address")))
}

/// A store conflict in the admin's words; other failures as they are.
pub(crate) fn conflict(e: StoreError, message: impl FnOnce() -> String) -> AdminError {
    match e {
        StoreError::Conflict(idempotency::WHAT) => AdminError::Conflict(
            "another request with this idempotency key was being made; retry to get its answer"
                .into(),
        ),
        StoreError::Conflict(_) => AdminError::Conflict(message()),
        e => e.into(),
    }
}
