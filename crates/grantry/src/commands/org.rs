//! `grantry org create`: an organization with its principal org admin.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use grantry_core::admin::{self, Ctx};

use crate::cli::{OrgCmd, OrgCreateArgs};
use crate::error::Result;
use crate::report::Report;

pub async fn run(cx: &Ctx<'_>, cmd: OrgCmd) -> Result<Box<dyn Report>> {
    match cmd {
        OrgCmd::Create(args) => Ok(Box::new(create(cx, args).await?)),
    }
}

/// A new organization; its admin's password is shown once.
pub struct OrgCreated {
    pub(crate) org: String,
    pub(crate) admin: String,
    pub(crate) password: SecretString,
}

async fn create(cx: &Ctx<'_>, args: OrgCreateArgs) -> Result<OrgCreated> {
    let created = admin::create_org(cx, &args.name, &args.admin, &args.email).await?;
    Ok(OrgCreated {
        org: created.org.name,
        admin: created.admin.username,
        password: created.password,
    })
}

impl Report for OrgCreated {
    fn json(&self) -> Value {
        json!({"org": self.org, "admin": self.admin, "password": self.password.expose_secret()})
    }

    fn text(&self) -> String {
        format!(
            "Created organization {} with principal org admin {}.\nOne-time password (shown once): {}",
            self.org,
            self.admin,
            self.password.expose_secret()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> OrgCreated {
        OrgCreated {
            org: "acme".into(),
            admin: "boss".into(),
            password: "pw-7Hq2".into(),
        }
    }

    #[test]
    fn json_is_org_admin_password() {
        assert_eq!(
            created().json().to_string(),
            r#"{"org":"acme","admin":"boss","password":"pw-7Hq2"}"#
        );
    }

    #[test]
    fn text_shows_the_password_once() {
        let text = created().text();
        assert_eq!(
            text,
            "Created organization acme with principal org admin boss.\nOne-time password (shown once): pw-7Hq2"
        );
        assert_eq!(text.matches("pw-7Hq2").count(), 1);
    }
}
