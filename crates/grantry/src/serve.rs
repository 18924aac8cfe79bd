//! `grantry serve`: open (and on first start, seed) the store, then serve until a signal.

use std::sync::Arc;

use grantry_core::admin::{self, Ctx};
use grantry_core::{Clock, Settings, Store, SystemClock, Timestamp};
use grantry_server::AppState;
use secrecy::ExposeSecret;
use tracing_subscriber::EnvFilter;

use crate::commands::open_store;
use crate::config::{Config, LogFormat};
use crate::error::{CliError, Result};

/// The org and admin created on a fresh database.
const FIRST_ORG: &str = "default";
const FIRST_ADMIN: &str = "admin";
const FIRST_ADMIN_EMAIL: &str = "admin@grantry.local";

pub async fn run(cfg: Config, settings: Settings) -> Result<()> {
    let limits = cfg.limits()?;
    let filter = EnvFilter::try_from_env("GRANTRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Text => logs.try_init(),
        // The span's fields (method, path, request id) on every line of the request.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    // Before the store opens, so its figures (cache, pools, commits) are recorded too.
    let metrics = match cfg.metrics.enabled {
        true => Some(grantry_server::metrics::install().map_err(CliError::Metrics)?),
        false => None,
    };

    // The mail settings are checked at start, so a server never runs with mail it cannot
    // send safely (the CLI sends it).
    let mailer = Arc::new(cfg.mailer()?);
    let store = open_store(&cfg).await?;
    let clock = Arc::new(SystemClock);
    let first = match store.count_orgs().await? {
        0 => first_start(&*store, clock.now(), &settings).await?,
        _ => None,
    };
    // JWT signing keys: one active, its successor published ahead (RFC 9068 tokens).
    grantry_core::oauth::jwt::ensure_keys(&*store, clock.now(), settings.tokens.key_rotation)
        .await
        .map_err(CliError::SigningKeys)?;
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
        .await
        .map_err(|err| CliError::Listen {
            addr: cfg.server.listen.clone(),
            err,
        })?;
    let addr = listener.local_addr().map_err(CliError::LocalAddress)?;
    println!(
        "grantry {} listening on http://{addr} (pod {}, database {})",
        env!("CARGO_PKG_VERSION"),
        settings.pod_id,
        grantry_store::redact(&cfg.database_url())
    );
    let console = format!("{}/console", settings.issuer());
    match first {
        Some(password) => println!(
            "First start: created organization {FIRST_ORG:?} with principal org admin {FIRST_ADMIN:?}.\n\
             Sign in to the console at {console} (organization {FIRST_ORG}, username {FIRST_ADMIN}); \
             it asks for a new password first.\n\
             One-time admin password (shown once, keep it): {}",
            password.expose_secret()
        ),
        None => println!("Console: {console}"),
    }
    tracing::info!(%addr, pod = %settings.pod_id, "serving");
    let mut state = AppState::new(store, clock, settings)
        .with_limits(limits)
        .with_mailer(mailer)
        .with_trusted_proxies(cfg.trusted_proxies()?);
    if let Some(digest) = cfg.operator_token()? {
        state = state.with_operator_token(digest);
    }
    if let Some(handle) = metrics {
        tokio::spawn(grantry_server::metrics::upkeep(handle.clone()));
        state = state.with_metrics(handle, cfg.metrics.listen.is_none());
    }
    if let (Some(addr), true) = (&cfg.metrics.listen, cfg.metrics.enabled) {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|err| CliError::MetricsListen {
                    addr: addr.clone(),
                    err,
                })?;
        println!("Metrics: http://{addr}/metrics");
        tokio::spawn(grantry_server::serve_metrics(listener, state.clone()));
    }
    grantry_server::serve(listener, state, shutdown_signal())
        .await
        .map_err(CliError::Server)?;
    tracing::info!("stopped");
    Ok(())
}

/// Seeds a fresh database with the first organization; returns its admin's one-time
/// password, to print once. When several instances start on one new database at the same
/// moment, one of them creates it and prints the password; the others find it made.
async fn first_start(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
) -> Result<Option<secrecy::SecretString>> {
    let cx = Ctx {
        store,
        now,
        settings,
        actor: "system",
        request_id: None,
        idempotency: None,
    };
    match admin::create_org(&cx, FIRST_ORG, FIRST_ADMIN, FIRST_ADMIN_EMAIL).await {
        Ok(created) => Ok(Some(created.password)),
        Err(admin::AdminError::Conflict(_)) => Ok(None),
        Err(e) => Err(CliError::FirstOrg(e)),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
