//! The `grantry` binary driven as a user drives it, on an embedded SQLite data folder of its
//! own per test: what it prints as text and as `--json`, and how it fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A fresh data folder, removed when the test ends.
struct DataDir(PathBuf);

impl DataDir {
    fn new(test: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("grantry-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }

    /// Runs `grantry --data DIR ARGS...` with `stdin`, without any GRANTRY_* setting of the
    /// caller's environment.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_grantry"));
        cmd.arg("--data").arg(&self.0).args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GRANTRY_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// A command that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        stdout
    }

    /// A `--json` command that must succeed; its one JSON value.
    fn json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(&[&["--json"], args].concat());
        serde_json::from_str(&stdout).unwrap()
    }

    /// A command that must fail; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The value after `label` on its line of `text`.
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    let line = text.lines().find(|l| l.starts_with(label)).unwrap();
    &line[label.len()..]
}

const ORG: [&str; 8] = [
    "org",
    "create",
    "--name",
    "acme",
    "--admin",
    "boss",
    "--email",
    "boss@example.com",
];

#[test]
fn text_output_reads_as_the_readme_shows() {
    let d = DataDir::new("text");
    let org = d.ok(&ORG);
    assert!(org.starts_with(
        "Created organization acme with principal org admin boss.\nOne-time password (shown once): "
    ));
    let app = d.ok(&["app", "add", "--org", "acme", "--name", "CRM sync"]);
    assert!(app.starts_with("Registered application \"CRM sync\" in acme.\nClient ID: "));
    let client_id = after(&app, "Client ID: ");
    assert!(after(&app, "Client secret (shown once): ").starts_with("gcs_"));
    let access = d.ok(&[
        "access",
        "add",
        "--org",
        "acme",
        "--client-id",
        client_id,
        "--username",
        "boss",
        "--by",
        "boss",
    ]);
    assert!(access.starts_with(&format!(
        "Added account access for boss to application {client_id}.\nRefresh token (shown once): grt_"
    )));
    assert!(access.ends_with("\nMailed to: boss@example.com\n"));
    let list = d.ok(&["access", "list", "--org", "acme"]);
    assert!(list.contains(&format!(
        "  CRM sync                 {client_id} boss             added by boss\n"
    )));
    let bot = d.ok(&[
        "user",
        "add",
        "--org",
        "acme",
        "--username",
        "bot",
        "--email",
        "bot@example.com",
        "--kind",
        "api",
    ]);
    assert!(bot.starts_with("Added API user bot to acme.\nKey ID: "));
    let key = d.ok(&["key", "generate", "--org", "acme", "--username", "bot"]);
    assert!(key.starts_with("Generated secret key 1 for bot.\nKey ID: "));
    assert!(after(&key, "Use it as: ").starts_with("Authorization: Bearer "));
    let deleted = d.ok(&[
        "key",
        "delete",
        "--org",
        "acme",
        "--username",
        "bot",
        "--slot",
        "1",
    ]);
    assert!(deleted.starts_with("Deleted secret key 1 of bot. It keeps working until "));
    assert!(deleted.ends_with(", then stops everywhere.\n"));
}

#[test]
fn json_fields_are_the_documented_ones() {
    let d = DataDir::new("json");
    let org = d.json(&ORG);
    assert_eq!(keys(&org), ["org", "admin", "password"]);
    assert_eq!(
        (org["org"].as_str(), org["admin"].as_str()),
        (Some("acme"), Some("boss"))
    );
    let app = d.json(&["app", "add", "--org", "acme", "--name", "CRM sync"]);
    assert_eq!(keys(&app), ["client_id", "client_secret"]);
    let client_id = app["client_id"].as_str().unwrap();
    let rotated = d.json(&[
        "app",
        "rotate-secret",
        "--org",
        "acme",
        "--client-id",
        client_id,
        "--overlap",
        "1h",
    ]);
    assert_eq!(
        keys(&rotated),
        ["client_id", "client_secret", "old_secret_expires_at"]
    );
    assert_eq!(rotated["client_id"], app["client_id"]);
    assert_ne!(rotated["client_secret"], app["client_secret"]);
    let access = d.json(&[
        "access",
        "add",
        "--org",
        "acme",
        "--client-id",
        client_id,
        "--username",
        "boss",
        "--by",
        "boss",
    ]);
    assert_eq!(keys(&access), ["client_id", "username", "refresh_token"]);
    let list = d.json(&["access", "list", "--org", "acme"]);
    let row = &list.as_array().unwrap()[0];
    assert_eq!(
        keys(row),
        [
            "client_id",
            "application",
            "username",
            "added_by",
            "scopes",
            "created_at"
        ]
    );
    assert_eq!(
        (row["application"].as_str(), row["added_by"].as_str()),
        (Some("CRM sync"), Some("boss"))
    );
    let audit = d.json(&["audit", "--org", "acme", "--since", "1h"]);
    let first = &audit.as_array().unwrap()[0];
    assert_eq!(
        keys(first),
        ["id", "at", "actor", "action", "target", "detail", "count", "last_at"]
    );
    assert_eq!(
        (first["count"].as_i64(), &first["last_at"]),
        (Some(1), &first["at"])
    );
    assert_eq!(first["action"], "organization.created");
    let future = d.json(&["audit", "--org", "acme", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(future, Value::Array(vec![]));
}

#[test]
fn errors_say_what_to_do_next_as_text_or_json() {
    let d = DataDir::new("errors");
    assert_eq!(
        d.fails(&["audit", "--org", "nowhere"]),
        "error: organization \"nowhere\" not found; create it with `grantry org create --name nowhere ...`\n"
    );
    let err: Value =
        serde_json::from_str(&d.fails(&["--json", "audit", "--org", "acme", "--since", "soon"]))
            .unwrap();
    assert_eq!(
        err,
        serde_json::json!({"error": "--since \"soon\" is neither an RFC 3339 time nor a duration like 1h"})
    );
    d.ok(&ORG);
    let err: Value = serde_json::from_str(&d.fails(&[
        "--json",
        "user",
        "grant",
        "--org",
        "acme",
        "--username",
        "boss",
        "--grant",
        "lists:nope",
    ]))
    .unwrap();
    assert_eq!(
        err["error"],
        "unknown grant \"lists:nope\"; grants are lists:read, lists:write, contacts:read, contacts:write, events:write, admin:read, admin:write"
    );
}

#[test]
fn a_password_from_stdin_is_checked_and_never_echoed() {
    let d = DataDir::new("stdin");
    d.ok(&ORG);
    let add = |username: &str, password: &str| {
        d.run(
            &[
                "--json",
                "user",
                "add",
                "--org",
                "acme",
                "--username",
                username,
                "--email",
                "carol@example.com",
                "--kind",
                "ui",
                "--password-stdin",
            ],
            password,
        )
    };
    let short = add("carol", "short\n");
    assert!(!short.status.success());
    assert_eq!(
        String::from_utf8(short.stderr).unwrap(),
        "{\"error\":\"the password must be at least 12 characters\"}\n"
    );
    let good = add("carol", "correct horse battery\r\n");
    assert!(good.status.success());
    let stdout = String::from_utf8(good.stdout).unwrap();
    assert_eq!(
        stdout,
        "{\"org\":\"acme\",\"username\":\"carol\",\"kind\":\"ui\"}\n"
    );
    assert!(good.stderr.is_empty());
}
