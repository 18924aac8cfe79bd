//! Why a command failed. Each message names what went wrong and, where the user can act,
//! what to do next; the whole message is in `Display` (nothing is left in `source`), since it
//! is printed once, as text or as `{"error": "..."}`.

use std::io;
use std::path::PathBuf;

use grantry_core::admin::AdminError;

use crate::config::ConfigError;
use crate::mailer::MailSetupError;
use grantry_core::{Grant, StoreError};

pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An admin operation refused or failed; core's message says what to do next.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration file, the environment or the settings they make.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("unknown grant {0:?}; grants are {names}", names = grant_names())]
    UnknownGrant(String),
    #[error("--since {0:?} is neither an RFC 3339 time nor a duration like 1h")]
    Since(String),
    /// `--overlap` is not a duration; the message names the forms that are.
    #[error("{0}")]
    Overlap(String),
    #[error("reading the password: {0}")]
    PasswordStdin(io::Error),
    #[error("cannot create data folder {}: {err}", path.display())]
    DataFolder { path: PathBuf, err: io::Error },
    /// `mail.from` or `mail.smtp_url` is unusable, or the outbox cannot be created.
    #[error(transparent)]
    Mail(#[from] MailSetupError),
    /// The admin API refused the command or could not be reached (`--server`); its words.
    #[error("{0}")]
    Remote(String),
    #[error("--server needs --token (or GRANTRY_TOKEN): an access token or API key with admin:read / admin:write")]
    NoToken,
    #[error("`{0}` runs on the server's own machine; it has no --server form")]
    LocalOnly(&'static str),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    #[error("creating the first organization: {0}")]
    FirstOrg(AdminError),
    #[error("preparing the JWT signing keys: {0}")]
    SigningKeys(StoreError),
    #[error("cannot listen on {addr}: {err}; pick another address with --listen")]
    Listen { addr: String, err: io::Error },
    #[error("{0}")]
    LocalAddress(io::Error),
    #[error("server error: {0}")]
    Server(io::Error),
    #[error("cannot listen on {addr} for metrics: {err}; change metrics.listen")]
    MetricsListen { addr: String, err: io::Error },
    #[error("{0}")]
    Metrics(String),
}

fn grant_names() -> String {
    let all: Vec<_> = Grant::ALL.iter().map(|g| g.name()).collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_grant_lists_every_grant() {
        assert_eq!(
            CliError::UnknownGrant("lists:nope".into()).to_string(),
            "unknown grant \"lists:nope\"; grants are lists:read, lists:write, contacts:read, contacts:write, events:write, admin:read, admin:write"
        );
    }

    #[test]
    fn admin_and_store_errors_keep_their_own_words() {
        let admin = AdminError::NotFound("user \"bob\" not found".into());
        assert_eq!(CliError::from(admin).to_string(), "user \"bob\" not found");
        let store = StoreError::Backend("disk full".into());
        assert_eq!(
            CliError::from(store).to_string(),
            "storage failure: disk full"
        );
    }

    #[test]
    fn listen_failure_says_which_flag_to_change() {
        let err = CliError::Listen {
            addr: "127.0.0.1:8080".into(),
            err: io::Error::new(io::ErrorKind::AddrInUse, "Address already in use"),
        };
        assert_eq!(
            err.to_string(),
            "cannot listen on 127.0.0.1:8080: Address already in use; pick another address with --listen"
        );
    }

    #[test]
    fn data_folder_failure_names_the_folder() {
        let err = CliError::DataFolder {
            path: PathBuf::from("/nope/data"),
            err: io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied"),
        };
        assert_eq!(
            err.to_string(),
            "cannot create data folder /nope/data: Permission denied"
        );
    }
}
