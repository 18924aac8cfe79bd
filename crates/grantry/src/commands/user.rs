//! `grantry user ...`: UI users and API users, their grants, disabling and deletion.

use std::io::BufRead;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use grantry_core::admin::{self, Ctx, UserInput};
use grantry_core::model::UserKind;
use grantry_core::GrantSet;

use super::{parse_grant, parse_grants};
use crate::cli::{UserAddArgs, UserCmd, UserGrantArgs, UserRef};
use crate::error::{CliError, Result};
use crate::report::Report;

pub async fn run(cx: &Ctx<'_>, cmd: UserCmd) -> Result<Box<dyn Report>> {
    let report: Box<dyn Report> = match cmd {
        UserCmd::Add(args) => Box::new(add(cx, args).await?),
        UserCmd::Grant(args) => Box::new(set_grant(cx, args, true).await?),
        UserCmd::Revoke(args) => Box::new(set_grant(cx, args, false).await?),
        UserCmd::Disable(user) => Box::new(set_disabled(cx, user, true).await?),
        UserCmd::Enable(user) => Box::new(set_disabled(cx, user, false).await?),
        UserCmd::Delete(user) => Box::new(delete(cx, user).await?),
    };
    Ok(report)
}

/// A new user: an API user's Key ID, or a UI user's generated password (shown once).
pub struct UserAdded {
    pub(crate) org: String,
    pub(crate) username: String,
    pub(crate) kind: UserKind,
    pub(crate) key_id: Option<String>,
    pub(crate) password: Option<SecretString>,
}

async fn add(cx: &Ctx<'_>, args: UserAddArgs) -> Result<UserAdded> {
    let password = if args.password_stdin {
        Some(read_password()?)
    } else {
        None
    };
    let input = UserInput {
        username: args.username,
        email: args.email,
        kind: args.kind.into(),
        role: args.role.into(),
        grants: parse_grants(&args.grants)?,
        password,
    };
    let added = admin::add_user(cx, &args.org, input).await?;
    Ok(UserAdded {
        org: args.org,
        username: added.user.username,
        kind: added.user.kind,
        key_id: added.user.key_id,
        password: added.password,
    })
}

/// One line from standard input, without its line ending.
pub(crate) fn read_password() -> Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::PasswordStdin)?;
    let len = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(len);
    Ok(SecretString::from(line))
}

impl Report for UserAdded {
    fn json(&self) -> Value {
        let mut v = Map::new();
        v.insert("org".into(), json!(self.org));
        v.insert("username".into(), json!(self.username));
        v.insert("kind".into(), json!(self.kind.as_str()));
        if let Some(k) = &self.key_id {
            v.insert("key_id".into(), json!(k));
        }
        if let Some(p) = &self.password {
            v.insert("password".into(), json!(p.expose_secret()));
        }
        Value::Object(v)
    }

    fn text(&self) -> String {
        let kind = self.kind.as_str().to_uppercase();
        let mut text = format!("Added {kind} user {} to {}.", self.username, self.org);
        if let Some(k) = &self.key_id {
            text.push_str(&format!(
                "\nKey ID: {k}\nGenerate its secret keys with `grantry key generate`."
            ));
        }
        if let Some(p) = &self.password {
            text.push_str(&format!(
                "\nOne-time password (shown once): {}",
                p.expose_secret()
            ));
        }
        text
    }
}

/// The grants a user holds after one was given or taken away.
pub struct GrantsHeld {
    pub(crate) org: String,
    pub(crate) username: String,
    pub(crate) grants: GrantSet,
}

async fn set_grant(cx: &Ctx<'_>, args: UserGrantArgs, on: bool) -> Result<GrantsHeld> {
    let grant = parse_grant(&args.grant)?;
    let user = admin::set_grant(cx, &args.org, &args.username, grant, on).await?;
    Ok(GrantsHeld {
        org: args.org,
        username: user.username,
        grants: user.grants,
    })
}

impl Report for GrantsHeld {
    fn json(&self) -> Value {
        json!({"org": self.org, "username": self.username, "grants": self.grants.names()})
    }

    fn text(&self) -> String {
        let held = if self.grants.is_empty() {
            "no grants".into()
        } else {
            self.grants.to_scope()
        };
        format!("{} now holds: {held}", self.username)
    }
}

/// A user disabled or enabled again.
pub struct UserDisabled {
    pub(crate) org: String,
    pub(crate) username: String,
    pub(crate) disabled: bool,
}

async fn set_disabled(cx: &Ctx<'_>, user: UserRef, disabled: bool) -> Result<UserDisabled> {
    let changed = admin::set_disabled(cx, &user.org, &user.username, disabled).await?;
    Ok(UserDisabled {
        org: user.org,
        username: changed.username,
        disabled: changed.disabled,
    })
}

impl Report for UserDisabled {
    fn json(&self) -> Value {
        json!({"org": self.org, "username": self.username, "disabled": self.disabled})
    }

    fn text(&self) -> String {
        let state = if self.disabled {
            "disabled; its credentials no longer work"
        } else {
            "enabled"
        };
        format!("{} is {state}.", self.username)
    }
}

/// A user deleted with its keys, account accesses and tokens.
pub struct UserDeleted {
    pub(crate) org: String,
    pub(crate) username: String,
}

async fn delete(cx: &Ctx<'_>, user: UserRef) -> Result<UserDeleted> {
    admin::delete_user(cx, &user.org, &user.username).await?;
    Ok(UserDeleted {
        org: user.org,
        username: user.username,
    })
}

impl Report for UserDeleted {
    fn json(&self) -> Value {
        json!({"org": self.org, "username": self.username, "deleted": true})
    }

    fn text(&self) -> String {
        format!(
            "Deleted {} with its keys, account accesses and tokens.",
            self.username
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_core::Grant;

    fn added(kind: UserKind, key_id: Option<&str>, password: Option<&str>) -> UserAdded {
        UserAdded {
            org: "acme".into(),
            username: "crm-bot".into(),
            kind,
            key_id: key_id.map(Into::into),
            password: password.map(SecretString::from),
        }
    }

    #[test]
    fn api_user_json_has_its_key_id_and_no_password() {
        let r = added(UserKind::Api, Some("6f1c2a8e"), None);
        assert_eq!(
            r.json().to_string(),
            r#"{"org":"acme","username":"crm-bot","kind":"api","key_id":"6f1c2a8e"}"#
        );
        assert_eq!(
            r.text(),
            "Added API user crm-bot to acme.\nKey ID: 6f1c2a8e\nGenerate its secret keys with `grantry key generate`."
        );
    }

    #[test]
    fn ui_user_json_has_the_generated_password_and_no_key_id() {
        let r = added(UserKind::Ui, None, Some("pw-Zx81"));
        assert_eq!(
            r.json().to_string(),
            r#"{"org":"acme","username":"crm-bot","kind":"ui","password":"pw-Zx81"}"#
        );
        assert_eq!(
            r.text(),
            "Added UI user crm-bot to acme.\nOne-time password (shown once): pw-Zx81"
        );
    }

    #[test]
    fn ui_user_with_its_own_password_shows_none() {
        let r = added(UserKind::Ui, None, None);
        assert_eq!(
            r.json().to_string(),
            r#"{"org":"acme","username":"crm-bot","kind":"ui"}"#
        );
        assert_eq!(r.text(), "Added UI user crm-bot to acme.");
    }

    #[test]
    fn grants_held_list_by_name_or_say_none() {
        let mut grants = GrantSet::default();
        grants.insert(Grant::ListsRead);
        grants.insert(Grant::EventsWrite);
        let held = GrantsHeld {
            org: "acme".into(),
            username: "bot".into(),
            grants,
        };
        assert_eq!(
            held.json().to_string(),
            r#"{"org":"acme","username":"bot","grants":["lists:read","events:write"]}"#
        );
        assert_eq!(held.text(), "bot now holds: lists:read events:write");
        let none = GrantsHeld {
            grants: GrantSet::default(),
            ..held
        };
        assert_eq!(
            none.json().to_string(),
            r#"{"org":"acme","username":"bot","grants":[]}"#
        );
        assert_eq!(none.text(), "bot now holds: no grants");
    }

    #[test]
    fn disabling_and_enabling_say_which() {
        let off = UserDisabled {
            org: "acme".into(),
            username: "bot".into(),
            disabled: true,
        };
        assert_eq!(
            off.json().to_string(),
            r#"{"org":"acme","username":"bot","disabled":true}"#
        );
        assert_eq!(
            off.text(),
            "bot is disabled; its credentials no longer work."
        );
        let on = UserDisabled {
            disabled: false,
            ..off
        };
        assert_eq!(
            on.json().to_string(),
            r#"{"org":"acme","username":"bot","disabled":false}"#
        );
        assert_eq!(on.text(), "bot is enabled.");
    }

    #[test]
    fn deletion_reports_the_user() {
        let r = UserDeleted {
            org: "acme".into(),
            username: "bot".into(),
        };
        assert_eq!(
            r.json().to_string(),
            r#"{"org":"acme","username":"bot","deleted":true}"#
        );
        assert_eq!(
            r.text(),
            "Deleted bot with its keys, account accesses and tokens."
        );
    }
}
