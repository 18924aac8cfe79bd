//! The admin commands over the admin API (`--server URL --token TOKEN`; docs/admin-api.md):
//! the same commands and the same reports as the local ones, made as `/admin/v1` calls to a
//! running server instead of opening its database.

mod commands;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::cli::AdminCommand;
use crate::error::{CliError, Result};
use crate::report::Report;

/// Where the commands go, and with what credential.
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

/// One answer of the admin API.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Remote {
    /// The admin API of the server at `server` (its public URL), called with `token`.
    pub fn new(server: &str, token: SecretString) -> Result<Remote> {
        let url = url::Url::parse(server).map_err(|e| CliError::Remote(format!(
            "--server {server:?} is not a URL ({e}); give the server's public URL, e.g. https://grantry.example.com"
        )))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CliError::Remote(format!(
                "--server {server:?} must be an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("grantry-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Remote(format!("cannot make an HTTP client: {e}")))?;
        Ok(Remote {
            http,
            base: format!("{}/admin/v1", server.trim_end_matches('/')),
            token,
        })
    }

    /// Calls `method path` with `body`; a create carries an idempotency key and is sent
    /// again under it once if the connection failed, so it is made at most once.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        let key =
            (method == Method::POST && body.is_some()).then(|| uuid::Uuid::new_v4().to_string());
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(self.token.expose_secret());
            if let Some(k) = &key {
                req = req.header("idempotency-key", k);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) => return answer(r).await,
                Err(e) if tries < 2 && (e.is_connect() || e.is_timeout()) && key.is_some() => {
                    continue
                }
                Err(e) => {
                    return Err(CliError::Remote(format!(
                        "cannot reach {}: {e}; check --server and that the server is running",
                        self.base
                    )))
                }
            }
        }
    }

    /// [`Remote::call`], refusing anything but a success with the problem's own words.
    pub async fn ok(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer> {
        let a = self.call(method, path, body).await?;
        if a.status.is_success() {
            Ok(a)
        } else {
            Err(refused(&a))
        }
    }
}

async fn answer(r: reqwest::Response) -> Result<Answer> {
    let status = r.status();
    let text = r
        .text()
        .await
        .map_err(|e| CliError::Remote(format!("the answer broke off: {e}")))?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|_| {
            CliError::Remote(format!(
                "the server answered {status} with something that is not JSON; is --server grantry's URL?"
            ))
        })?
    };
    Ok(Answer { status, body })
}

/// A refusal in the server's words (RFC 9457 `detail`).
pub fn refused(a: &Answer) -> CliError {
    let detail = a.body["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the server answered {}", a.status));
    CliError::Remote(detail)
}

/// A JSON string field of an answer.
pub fn text(v: &Value, field: &str) -> Result<String> {
    v[field].as_str().map(str::to_string).ok_or_else(|| {
        CliError::Remote(format!(
            "the answer has no {field:?}; is the server this grantry's version?"
        ))
    })
}

/// Runs one admin command against the server.
pub async fn run(cmd: AdminCommand, server: &str, token: SecretString) -> Result<Box<dyn Report>> {
    let remote = Remote::new(server, token)?;
    commands::run(&remote, cmd).await
}
