//! `grantry access ...`: account access (seeds 000/001), an application bound to a UI user
//! with a refresh token.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use grantry_core::admin::{self, Ctx};
use grantry_core::store::AccessSummary;

use crate::cli::{AccessAddArgs, AccessCmd, AccessRef, OrgRef};
use crate::config::Config;
use crate::error::Result;
use crate::report::Report;

pub async fn run(cx: &Ctx<'_>, cfg: &Config, cmd: AccessCmd) -> Result<Box<dyn Report>> {
    let report: Box<dyn Report> = match cmd {
        AccessCmd::Add(args) => Box::new(add(cx, cfg, args).await?),
        AccessCmd::List(org) => Box::new(list(cx, org).await?),
        AccessCmd::Delete(access) => Box::new(delete(cx, access).await?),
    };
    Ok(report)
}

/// A new account access: its refresh token (shown once) and who it was mailed to.
pub struct AccessAdded {
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) refresh_token: SecretString,
    pub(crate) mailed_to: Vec<String>,
    /// Why the mail was not delivered; the access exists regardless.
    pub(crate) mail_error: Option<String>,
}

async fn add(cx: &Ctx<'_>, cfg: &Config, args: AccessAddArgs) -> Result<AccessAdded> {
    let mailer = cfg.mailer()?;
    let AccessAddArgs {
        org,
        client_id,
        username,
        by,
    } = args;
    let added = admin::add_account_access(cx, &mailer, &org, &client_id, &username, &by).await?;
    Ok(AccessAdded {
        client_id,
        username,
        refresh_token: added.refresh_token,
        mailed_to: added.mailed_to,
        mail_error: added.mail_error,
    })
}

impl Report for AccessAdded {
    fn json(&self) -> Value {
        json!({
            "client_id": self.client_id,
            "username": self.username,
            "refresh_token": self.refresh_token.expose_secret(),
        })
    }

    fn text(&self) -> String {
        let mut text = format!(
            "Added account access for {} to application {}.\nRefresh token (shown once): {}\nMailed to: {}",
            self.username,
            self.client_id,
            self.refresh_token.expose_secret(),
            self.mailed_to.join(", ")
        );
        if self.mail_error.is_some() {
            text.push_str(" (not delivered)");
        }
        text
    }

    fn warning(&self) -> Option<String> {
        self.mail_error
            .as_ref()
            .map(|err| format!("the account access was added but the e-mail was not sent: {err}"))
    }
}

/// The organization's live account accesses, admin-added and consented alike.
pub struct AccessList {
    pub(crate) org: String,
    pub(crate) accesses: Vec<AccessSummary>,
}

async fn list(cx: &Ctx<'_>, org: OrgRef) -> Result<AccessList> {
    let accesses = admin::list_account_access(cx, &org.org).await?;
    Ok(AccessList {
        org: org.org,
        accesses,
    })
}

impl Report for AccessList {
    fn json(&self) -> Value {
        let rows = self.accesses.iter().map(|a| {
            json!({
                "client_id": a.client_id,
                "application": a.application,
                "username": a.username,
                "added_by": a.created_by,
                "scopes": a.access.scopes.names(),
                "created_at": a.access.created_at.to_rfc3339(),
            })
        });
        Value::Array(rows.collect())
    }

    fn text(&self) -> String {
        if self.accesses.is_empty() {
            return format!("No account access in {}.", self.org);
        }
        let lines: Vec<String> = self.accesses.iter().map(access_line).collect();
        lines.join("\n")
    }
}

fn access_line(a: &AccessSummary) -> String {
    let by = a
        .created_by
        .as_ref()
        .map_or("consent".to_string(), |b| format!("added by {b}"));
    format!(
        "{}  {:<24} {:<36} {:<16} {by}",
        a.access.created_at.to_rfc3339(),
        a.application,
        a.client_id,
        a.username
    )
}

/// A deleted account access; its tokens stopped working.
pub struct AccessDeleted {
    pub(crate) client_id: String,
    pub(crate) username: String,
}

async fn delete(cx: &Ctx<'_>, access: AccessRef) -> Result<AccessDeleted> {
    admin::delete_account_access(cx, &access.org, &access.client_id, &access.username).await?;
    Ok(AccessDeleted {
        client_id: access.client_id,
        username: access.username,
    })
}

impl Report for AccessDeleted {
    fn json(&self) -> Value {
        json!({"client_id": self.client_id, "username": self.username, "deleted": true})
    }

    fn text(&self) -> String {
        format!(
            "Deleted account access for {} to application {}; its tokens no longer work.",
            self.username, self.client_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_core::model::AccountAccess;
    use grantry_core::{GrantSet, Timestamp};

    fn added(mail_error: Option<&str>) -> AccessAdded {
        AccessAdded {
            client_id: "6f1c2a8e".into(),
            username: "admin".into(),
            refresh_token: "grt_local_Jx0".into(),
            mailed_to: vec!["admin@example.com".into(), "boss@example.com".into()],
            mail_error: mail_error.map(Into::into),
        }
    }

    #[test]
    fn added_access_json_is_client_id_username_refresh_token() {
        let r = added(None);
        assert_eq!(
            r.json().to_string(),
            r#"{"client_id":"6f1c2a8e","username":"admin","refresh_token":"grt_local_Jx0"}"#
        );
        assert_eq!(
            r.text(),
            "Added account access for admin to application 6f1c2a8e.\n\
             Refresh token (shown once): grt_local_Jx0\n\
             Mailed to: admin@example.com, boss@example.com"
        );
        assert_eq!(r.warning(), None);
    }

    #[test]
    fn undelivered_mail_is_a_warning_without_the_token() {
        let r = added(Some("SMTP delivery failed: connection refused"));
        assert!(r.text().ends_with("boss@example.com (not delivered)"));
        let warning = r.warning().unwrap();
        assert_eq!(
            warning,
            "the account access was added but the e-mail was not sent: SMTP delivery failed: connection refused"
        );
        assert!(!warning.contains("grt_local_Jx0"));
        assert_eq!(r.json(), added(None).json());
    }

    fn summary(username: &str, created_by: Option<&str>) -> AccessSummary {
        AccessSummary {
            access: AccountAccess {
                id: 1,
                org_id: 1,
                app_id: 2,
                user_id: 3,
                created_by: None,
                scopes: GrantSet::apis(),
                created_at: Timestamp::parse_rfc3339("2026-11-23T19:00:00Z").unwrap(),
            },
            client_id: "6f1c2a8e".into(),
            application: "CRM sync".into(),
            username: username.into(),
            created_by: created_by.map(Into::into),
            last_used_at: None,
        }
    }

    #[test]
    fn list_json_rows_and_text_columns() {
        let r = AccessList {
            org: "default".into(),
            accesses: vec![summary("alice", Some("admin")), summary("bob", None)],
        };
        assert_eq!(
            r.json().to_string(),
            concat!(
                r#"[{"client_id":"6f1c2a8e","application":"CRM sync","username":"alice","added_by":"admin","#,
                r#""scopes":["lists:read","lists:write","contacts:read","contacts:write","events:write"],"#,
                r#""created_at":"2026-11-23T19:00:00Z"},"#,
                r#"{"client_id":"6f1c2a8e","application":"CRM sync","username":"bob","added_by":null,"#,
                r#""scopes":["lists:read","lists:write","contacts:read","contacts:write","events:write"],"#,
                r#""created_at":"2026-11-23T19:00:00Z"}]"#
            )
        );
        assert_eq!(
            r.text(),
            format!(
                "2026-11-23T19:00:00Z  CRM sync                 6f1c2a8e{pad} alice            added by admin\n\
                 2026-11-23T19:00:00Z  CRM sync                 6f1c2a8e{pad} bob              consent",
                pad = " ".repeat(28)
            )
        );
    }

    #[test]
    fn empty_list_says_so() {
        let r = AccessList {
            org: "default".into(),
            accesses: vec![],
        };
        assert_eq!(r.json().to_string(), "[]");
        assert_eq!(r.text(), "No account access in default.");
    }

    #[test]
    fn deleted_access_json_and_text() {
        let r = AccessDeleted {
            client_id: "6f1c2a8e".into(),
            username: "admin".into(),
        };
        assert_eq!(
            r.json().to_string(),
            r#"{"client_id":"6f1c2a8e","username":"admin","deleted":true}"#
        );
        assert_eq!(
            r.text(),
            "Deleted account access for admin to application 6f1c2a8e; its tokens no longer work."
        );
    }
}
