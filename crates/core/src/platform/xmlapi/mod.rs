//! The XML API of docs/architecture.md, protected APIs: `<Envelope><Body><Op>...</Op></Body></Envelope>` requests
//! answered with `<RESULT><SUCCESS>TRUE</SUCCESS>...</RESULT>` or a `Fault` carrying the
//! original product's error ids.
//!
//! The HTTP handler extracts the body (form field `xml=` or raw `text/xml`), calls [`parse`],
//! authenticates, checks [`required_grant`] and calls [`execute`]; every failure is a
//! [`Fault`] it renders with [`Fault::render`], with the HTTP status of its [`FaultKind`].
//!
//! Nothing here does HTTP, SQL or reads a clock: the store and `now` are parameters.

mod ops;
mod parse;
mod render;
mod sessions;

use std::fmt::{self, Display};

use crate::gate::{BearerError, BearerErrorCode};
use crate::permissions::Grant;
use crate::platform::data::DataError;

pub use ops::execute;
pub use parse::{parse, MAX_DEPTH, MAX_ELEMENTS};
pub use render::escape;
pub use sessions::{login, logout, logout_without_session, session_principal, SessionCall};

/// A parsed request (docs/architecture.md, protected APIs): the operation element's tag name and the element itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The operation's tag name, e.g. `GetLists` (case-sensitive).
    pub op: String,
    /// The operation element, with its children (the operation's fields).
    pub element: Element,
}

/// One element of a request: its tag name, its character data (text and CDATA, entities
/// decoded, whitespace kept) and its child elements in document order. Attributes are
/// checked for well-formedness and otherwise ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The children with tag `name` (case-sensitive).
    pub fn children_named<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child with tag `name` (case-sensitive).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// The grant an operation needs (docs/architecture.md, protected APIs: every XML operation maps to exactly one);
/// `None` for `Login`/`Logout` and for unknown operations.
pub fn required_grant(op: &str) -> Option<Grant> {
    match op {
        "GetLists" => Some(Grant::ListsRead),
        "SelectRecipientData" => Some(Grant::ContactsRead),
        "AddRecipient" | "UpdateRecipient" | "RemoveRecipient" => Some(Grant::ContactsWrite),
        _ => None,
    }
}

/// Error id of a server-side failure (the original product's 50).
pub const ERR_SERVER: u32 = 50;
/// Error id of an invalid XML request (the original product's 51).
pub const ERR_INVALID_REQUEST: u32 = 51;
/// Error id: the recipient already exists on the list.
pub const ERR_RECIPIENT_EXISTS: u32 = 122;
/// Error id: a field is missing or invalid.
pub const ERR_INVALID_FIELD: u32 = 126;
/// Error id: the recipient is not a member of the list.
pub const ERR_RECIPIENT_NOT_FOUND: u32 = 128;
/// Error id: the list does not exist.
pub const ERR_LIST_NOT_FOUND: u32 = 134;
/// Error id: login failed (the original product's 140): the username or secret key is wrong.
pub const ERR_LOGIN: u32 = 140;
/// Error id: the org has as many live `Login` sessions as `sessions.max_per_org` allows.
pub const ERR_SESSION_LIMIT: u32 = 147;
/// Error id: session expired or invalid (the original product's 145); here, a bad credential.
pub const ERR_SESSION: u32 = 145;
/// Error id: the credential lacks the grant the operation needs.
pub const ERR_GRANT: u32 = 146;

/// What kind of failure a [`Fault`] is; `grantry-server` answers each with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The operation ran and the platform said no (an unknown list, a duplicate recipient):
    /// the original product answers these with HTTP 200.
    Business,
    /// The request is malformed or a field is invalid.
    BadRequest,
    /// No, or a bad, credential.
    Unauthenticated,
    /// The credential lacks the operation's grant.
    Forbidden,
    /// Too many failed attempts from the source or for the key (docs/architecture.md, limits).
    TooManyAttempts,
    /// The server failed; the client may try again.
    Server,
    /// The database is unavailable for now: 503 with `Retry-After`.
    Unavailable,
}

/// An XML API failure (docs/architecture.md, protected APIs): rendered as a `Fault` envelope. `cause` is for logs
/// and is never rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub errorid: u32,
    pub message: String,
    pub kind: FaultKind,
    pub cause: Option<String>,
    /// For [`FaultKind::TooManyAttempts`]: seconds until the next attempt may succeed
    /// (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl Fault {
    /// A fault with no logged cause.
    pub fn new(errorid: u32, kind: FaultKind, message: impl Into<String>) -> Fault {
        Fault {
            errorid,
            message: message.into(),
            kind,
            cause: None,
            retry_after: None,
        }
    }

    /// Error 51, a bad request: `Invalid XML request: <what>`.
    pub fn invalid_xml(what: impl Display) -> Fault {
        Fault::new(
            ERR_INVALID_REQUEST,
            FaultKind::BadRequest,
            format!("Invalid XML request: {what}"),
        )
    }

    /// Error 126, a bad request: a required field is missing or cannot be parsed; the message
    /// names the field.
    pub fn invalid_field(field: &str, problem: impl Display) -> Fault {
        Fault::new(
            ERR_INVALID_FIELD,
            FaultKind::BadRequest,
            format!("Invalid field {field}: {problem}"),
        )
    }

    /// Error 50, a server failure: `Server error; try again`; `cause` is kept for the logs only.
    pub fn server(cause: impl Display) -> Fault {
        Fault {
            errorid: ERR_SERVER,
            message: "Server error; try again".into(),
            kind: FaultKind::Server,
            cause: Some(cause.to_string()),
            retry_after: None,
        }
    }

    /// A storage failure: error 50, as a server failure or, when the database is unavailable
    /// for now, with `Retry-After` (503).
    pub fn store(e: crate::store::StoreError) -> Fault {
        if e.is_unavailable() {
            return Fault::unavailable(e);
        }
        Fault::server(e)
    }

    /// Error 50 while the database is unavailable: nothing was changed; try again shortly.
    pub fn unavailable(cause: impl Display) -> Fault {
        Fault {
            kind: FaultKind::Unavailable,
            message: "Server temporarily unavailable; nothing was changed, try again shortly"
                .into(),
            retry_after: Some(crate::store::RETRY_AFTER_SECS),
            ..Fault::server(cause)
        }
    }

    /// A refused credential (RFC 6750 errors of docs/architecture.md, ways to authenticate) in XML API terms: no or invalid
    /// credential is 145 (unauthenticated), a malformed one 145 (bad request), a missing
    /// grant 146 (forbidden), a storage failure 50 (server).
    pub fn from_bearer(e: &BearerError) -> Fault {
        match e.code {
            None | Some(BearerErrorCode::InvalidToken) => Fault::new(
                ERR_SESSION,
                FaultKind::Unauthenticated,
                format!("Session expired or invalid: {}", e.description),
            ),
            Some(BearerErrorCode::InvalidRequest) => Fault::new(
                ERR_SESSION,
                FaultKind::BadRequest,
                format!("Session expired or invalid: {}", e.description),
            ),
            Some(BearerErrorCode::InsufficientScope) => {
                Fault::new(ERR_GRANT, FaultKind::Forbidden, e.description.clone())
            }
            Some(BearerErrorCode::TooManyAttempts) => Fault {
                retry_after: e.retry_after,
                ..Fault::new(
                    ERR_SESSION,
                    FaultKind::TooManyAttempts,
                    format!("Session expired or invalid: {}", e.description),
                )
            },
            Some(BearerErrorCode::ServerError) => {
                Fault::server(e.cause.as_deref().unwrap_or(&e.description))
            }
            Some(BearerErrorCode::TemporarilyUnavailable) => {
                Fault::unavailable(e.cause.as_deref().unwrap_or(&e.description))
            }
        }
    }

    /// The fault envelope of docs/architecture.md, protected APIs, with the message escaped.
    pub fn render(&self) -> String {
        render::fault(self.errorid, &self.message)
    }
}

impl Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XML API fault {}: {}", self.errorid, self.message)
    }
}

impl std::error::Error for Fault {}

/// The platform's data errors in XML API terms: not-found and conflict are business faults,
/// as in the original product; invalid input is 126 (bad request).
impl From<DataError> for Fault {
    fn from(e: DataError) -> Fault {
        match e {
            DataError::Scope(b) => Fault::from_bearer(&b),
            DataError::NotFound("contact") | DataError::NotFound("recipient") => Fault::new(
                ERR_RECIPIENT_NOT_FOUND,
                FaultKind::Business,
                "Recipient is not a member of the list",
            ),
            DataError::NotFound(_) => {
                Fault::new(ERR_LIST_NOT_FOUND, FaultKind::Business, "List not found")
            }
            DataError::Conflict(_) => Fault::new(
                ERR_RECIPIENT_EXISTS,
                FaultKind::Business,
                "Recipient already exists",
            ),
            DataError::Invalid { field, message } => {
                Fault::invalid_field(xml_field_name(field), message)
            }
            DataError::Store(e) => Fault::store(e),
        }
    }
}

/// The XML API's name for a field the platform reports by its REST name.
fn xml_field_name(field: Option<&'static str>) -> &'static str {
    match field {
        Some("email") => "EMAIL",
        Some("columns") => "COLUMN",
        Some("name") => "NAME",
        Some(_) | None => "request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn bearer(code: Option<BearerErrorCode>) -> BearerError {
        BearerError {
            code,
            description: "why".into(),
            scope: None,
            basic: false,
            oauth1: false,
            retry_after: None,
            cause: Some("db down".into()),
        }
    }

    #[test]
    fn bearer_errors_map_to_ids_and_kinds() {
        let f = Fault::from_bearer(&bearer(None));
        assert_eq!((f.errorid, f.kind), (145, FaultKind::Unauthenticated));
        assert_eq!(f.message, "Session expired or invalid: why");
        let f = Fault::from_bearer(&bearer(Some(BearerErrorCode::InvalidToken)));
        assert_eq!((f.errorid, f.kind), (145, FaultKind::Unauthenticated));
        let f = Fault::from_bearer(&bearer(Some(BearerErrorCode::InvalidRequest)));
        assert_eq!((f.errorid, f.kind), (145, FaultKind::BadRequest));
        let f = Fault::from_bearer(&BearerError::insufficient_scope(Grant::ListsRead));
        assert_eq!((f.errorid, f.kind), (146, FaultKind::Forbidden));
        assert!(f.message.contains("lists:read"));
        let f = Fault::from_bearer(&bearer(Some(BearerErrorCode::ServerError)));
        assert_eq!((f.errorid, f.kind), (50, FaultKind::Server));
        assert_eq!(f.message, "Server error; try again");
        assert_eq!(f.cause.as_deref(), Some("db down"));
    }

    #[test]
    fn data_errors_map_to_business_faults() {
        let f = Fault::from(DataError::NotFound("contact"));
        assert_eq!((f.errorid, f.kind), (128, FaultKind::Business));
        let f = Fault::from(DataError::NotFound("database"));
        assert_eq!(
            (f.errorid, f.kind, f.message.as_str()),
            (134, FaultKind::Business, "List not found")
        );
        let f = Fault::from(DataError::Conflict("the contact already exists".into()));
        assert_eq!((f.errorid, f.kind), (122, FaultKind::Business));
        let f = Fault::from(DataError::Invalid {
            field: Some("email"),
            message: "bad".into(),
        });
        assert_eq!((f.errorid, f.kind), (126, FaultKind::BadRequest));
        assert!(f.message.contains("EMAIL"));
        let f = Fault::from(DataError::Store(StoreError::Backend(
            "secret detail".into(),
        )));
        assert_eq!((f.errorid, f.kind), (50, FaultKind::Server));
        assert!(!f.render().contains("secret detail"));
        let f = Fault::from(DataError::Scope(BearerError::insufficient_scope(
            Grant::ContactsWrite,
        )));
        assert_eq!((f.errorid, f.kind), (146, FaultKind::Forbidden));
    }

    #[test]
    fn grants_per_operation() {
        assert_eq!(required_grant("GetLists"), Some(Grant::ListsRead));
        assert_eq!(
            required_grant("SelectRecipientData"),
            Some(Grant::ContactsRead)
        );
        for op in ["AddRecipient", "UpdateRecipient", "RemoveRecipient"] {
            assert_eq!(required_grant(op), Some(Grant::ContactsWrite));
        }
        for op in ["Login", "Logout", "getlists", "Nope"] {
            assert_eq!(required_grant(op), None);
        }
    }
}
