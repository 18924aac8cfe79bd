//! The admin commands (docs/architecture.md, running it), one file per noun. Each command calls one core admin
//! operation and returns a [`Report`] of what it did; `main` prints it.

pub(crate) mod access;
pub(crate) mod app;
pub(crate) mod audit;
pub(crate) mod key;
pub(crate) mod org;
pub(crate) mod user;

use std::sync::Arc;

use grantry_core::admin::Ctx;
use grantry_core::{Clock, Grant, GrantSet, Settings, Store, SystemClock};

use crate::cli::AdminCommand;
use crate::config::Config;
use crate::error::{CliError, Result};
use crate::report::Report;

/// Opens the store, then runs one command as the `cli` actor at one instant.
pub async fn run(cmd: AdminCommand, cfg: &Config, settings: &Settings) -> Result<Box<dyn Report>> {
    let store = open_store(cfg).await?;
    let cx = Ctx {
        store: &*store,
        now: SystemClock.now(),
        settings,
        actor: "cli",
        request_id: None,
        idempotency: None,
    };
    match cmd {
        AdminCommand::Org(cmd) => org::run(&cx, cmd).await,
        AdminCommand::User(cmd) => user::run(&cx, cmd).await,
        AdminCommand::App(cmd) => app::run(&cx, cmd).await,
        AdminCommand::Access(cmd) => access::run(&cx, cfg, cmd).await,
        AdminCommand::Key(cmd) => key::run(&cx, cmd).await,
        AdminCommand::Audit(args) => Ok(Box::new(audit::show(&cx, args).await?)),
    }
}

/// A new operator token, shown once, and the setting that makes the server accept it.
pub struct OperatorToken {
    token: secrecy::SecretString,
    sha256: String,
}

/// Mints an operator token (docs/admin-api.md, the platform operator).
pub fn operator_token(settings: &Settings) -> OperatorToken {
    use grantry_core::credential::{mint, Kind};
    let minted = mint(Kind::OperatorToken, &settings.pod_id);
    let sha256 = crate::config::to_hex(minted.digest.as_bytes());
    OperatorToken {
        token: minted.value,
        sha256,
    }
}

impl Report for OperatorToken {
    fn json(&self) -> serde_json::Value {
        use secrecy::ExposeSecret;
        serde_json::json!({"token": self.token.expose_secret(), "sha256": self.sha256})
    }

    fn text(&self) -> String {
        use secrecy::ExposeSecret;
        format!(
            "Operator token (shown once, keep it as you would a root password): {}
             Make the server accept it: add to its configuration

[admin]
operator_token_sha256 = \"{}\"

             (or set GRANTRY_ADMIN__OPERATOR_TOKEN_SHA256) and restart it.",
            self.token.expose_secret(),
            self.sha256
        )
    }
}

/// Opens the configured store, creating the data folder for SQLite.
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>> {
    if cfg.is_sqlite() {
        let path = cfg.data_dir();
        std::fs::create_dir_all(&path).map_err(|err| CliError::DataFolder { path, err })?;
    }
    let pool = grantry_store::PoolSettings {
        max_connections: cfg.database.max_connections,
        acquire_timeout: cfg.database.acquire_timeout.0,
    };
    if pool.max_connections == 0 || pool.acquire_timeout.is_zero() {
        return Err(CliError::Config(crate::config::ConfigError::Settings(
            "database.max_connections and database.acquire_timeout must be more than 0".into(),
        )));
    }
    Ok(grantry_store::open_with(&cfg.database_url(), pool).await?)
}

pub(crate) fn parse_grant(name: &str) -> Result<Grant> {
    Grant::parse(name).ok_or_else(|| CliError::UnknownGrant(name.into()))
}

pub(crate) fn parse_grants(names: &[String]) -> Result<GrantSet> {
    names.iter().map(|n| parse_grant(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_by_name_and_the_first_unknown_one_is_named() {
        let set = parse_grants(&["lists:read".into(), "events:write".into()]).unwrap();
        assert_eq!(set.names(), ["lists:read", "events:write"]);
        assert!(parse_grants(&[]).unwrap().is_empty());
        let err = parse_grants(&["lists:read".into(), "lists:nope".into(), "x".into()]);
        assert!(matches!(err, Err(CliError::UnknownGrant(n)) if n == "lists:nope"));
    }
}
