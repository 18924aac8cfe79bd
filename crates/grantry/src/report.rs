//! What a command shows and where: a report on standard output, as text or (`--json`) as one
//! JSON value with the CLI's documented field names; warnings and errors on standard error.

use std::process::ExitCode;

use serde_json::{json, Value};

use crate::error::CliError;

/// A command's result, printable for people and for automation. Secrets a report carries are
/// exposed only here, in the one output that shows them once.
pub trait Report {
    /// The `--json` form: the field names and values scripts rely on.
    fn json(&self) -> Value;
    /// The human form, one or more lines.
    fn text(&self) -> String;
    /// Something the user should know although the command succeeded.
    fn warning(&self) -> Option<String> {
        None
    }
}

/// Prints a report the way the caller asked for.
pub fn print(json: bool, report: &dyn Report) {
    if let Some(w) = report.warning() {
        eprintln!("warning: {w}");
    }
    if json {
        println!("{}", report.json());
    } else {
        println!("{}", report.text());
    }
}

/// Prints an error the way the caller asked for, and picks the exit code.
pub fn fail(json: bool, err: &CliError) -> ExitCode {
    if json {
        eprintln!("{}", json!({ "error": err.to_string() }));
    } else {
        eprintln!("error: {err}");
    }
    ExitCode::FAILURE
}
