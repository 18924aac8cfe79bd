//! `grantry`: the binary. Parses the command line, loads the configuration, then serves or
//! runs one admin command and prints its report.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod config;
mod error;
mod mailer;
mod remote;
mod report;
mod serve;

use cli::{Cli, Command};
use config::{Config, Overrides};
use error::CliError;

/// Requests allocate and free many small buffers on every worker, and the commit thread frees
/// what the workers allocated: mimalloc's per-thread heaps serve both without the system
/// allocator's arena locks (docs/architecture.md, "Group commit").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|rt| rt.block_on(run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report::fail(json, &e),
    }
}

async fn run(cli: Cli) -> error::Result<()> {
    if let Some(server) = &cli.server {
        let token = cli.token.clone().ok_or(CliError::NoToken)?;
        return match cli.command {
            Command::Admin(cmd) => {
                let report = remote::run(cmd, server, token.into()).await?;
                report::print(cli.json, &*report);
                Ok(())
            }
            Command::Serve { .. } => Err(CliError::LocalOnly("serve")),
            Command::OperatorToken => Err(CliError::LocalOnly("operator-token")),
        };
    }
    let flags = Overrides {
        database_url: cli.database,
        data: cli.data,
        listen: cli.command.listen().cloned(),
    };
    let cfg = Config::load(cli.config.as_deref(), &flags)?;
    let mut settings = cfg.settings()?;
    if !matches!(cli.command, Command::OperatorToken) {
        // `operator-token` needs the pod only: it makes no data folder and no key file.
        settings.oauth1.key = Some(cfg.oauth1_key()?);
    }
    match cli.command {
        Command::Serve { .. } => serve::run(cfg, settings).await,
        Command::OperatorToken => {
            report::print(cli.json, &commands::operator_token(&settings));
            Ok(())
        }
        Command::Admin(cmd) => {
            let report = commands::run(cmd, &cfg, &settings).await?;
            report::print(cli.json, &*report);
            Ok(())
        }
    }
}
