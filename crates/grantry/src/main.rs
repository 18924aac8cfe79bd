//! `grantry`: the binary. Parses the command line, loads the configuration and runs one
//! command.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod config;
mod error;
mod mailer;
mod serve;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return commands::fail(json, &error::CliError::Runtime(e)),
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => commands::fail(json, &e),
    }
}
