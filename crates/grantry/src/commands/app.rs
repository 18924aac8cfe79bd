//! `grantry app ...`: applications (OAuth clients) and their client secrets.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use grantry_core::admin::{self, AppInput, Ctx};
use grantry_core::Timestamp;

use super::parse_grants;
use crate::cli::{AppAddArgs, AppCmd, RotateSecretArgs};
use crate::config::parse_duration;
use crate::error::{CliError, Result};
use crate::report::Report;

pub async fn run(cx: &Ctx<'_>, cmd: AppCmd) -> Result<Box<dyn Report>> {
    let report: Box<dyn Report> = match cmd {
        AppCmd::Add(args) => Box::new(add(cx, args).await?),
        AppCmd::RotateSecret(args) => Box::new(rotate_secret(cx, args).await?),
    };
    Ok(report)
}

/// A registered application; a confidential client's secret is shown once.
pub struct AppAdded {
    pub(crate) org: String,
    pub(crate) name: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
}

async fn add(cx: &Ctx<'_>, args: AppAddArgs) -> Result<AppAdded> {
    let scopes = if args.scopes.is_empty() {
        None
    } else {
        Some(parse_grants(&args.scopes)?)
    };
    let input = AppInput {
        name: args.name,
        description: args.description,
        redirect_uris: args.redirect_uris,
        scopes,
        public: args.public,
        rotate_refresh_tokens: args.rotate_refresh_tokens,
        token_format: args.token_format.into(),
    };
    let (app, client_secret) = admin::add_application(cx, &args.org, input).await?;
    Ok(AppAdded {
        org: args.org,
        name: app.name,
        client_id: app.client_id,
        client_secret,
    })
}

impl Report for AppAdded {
    fn json(&self) -> Value {
        let mut v = Map::new();
        v.insert("client_id".into(), json!(self.client_id));
        if let Some(s) = &self.client_secret {
            v.insert("client_secret".into(), json!(s.expose_secret()));
        }
        Value::Object(v)
    }

    fn text(&self) -> String {
        let mut text = format!(
            "Registered application {:?} in {}.\nClient ID: {}",
            self.name, self.org, self.client_id
        );
        if let Some(s) = &self.client_secret {
            text.push_str(&format!(
                "\nClient secret (shown once): {}",
                s.expose_secret()
            ));
        }
        text
    }
}

/// A new client secret, shown once; the previous ones work until `old_secret_expires_at`.
pub struct SecretRotated {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) old_secret_expires_at: Timestamp,
}

async fn rotate_secret(cx: &Ctx<'_>, args: RotateSecretArgs) -> Result<SecretRotated> {
    let overlap = parse_duration(&args.overlap).map_err(|e| CliError::Overlap(e.to_string()))?;
    let (client_secret, old_secret_expires_at) =
        admin::rotate_client_secret(cx, &args.org, &args.client_id, overlap).await?;
    Ok(SecretRotated {
        client_id: args.client_id,
        client_secret,
        old_secret_expires_at,
    })
}

impl Report for SecretRotated {
    fn json(&self) -> Value {
        json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "old_secret_expires_at": self.old_secret_expires_at.to_rfc3339(),
        })
    }

    fn text(&self) -> String {
        format!(
            "New client secret for {} (shown once): {}\nThe previous secret keeps working until {}.",
            self.client_id,
            self.client_secret.expose_secret(),
            self.old_secret_expires_at.to_rfc3339()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(client_secret: Option<&str>) -> AppAdded {
        AppAdded {
            org: "default".into(),
            name: "CRM sync".into(),
            client_id: "6f1c2a8e".into(),
            client_secret: client_secret.map(SecretString::from),
        }
    }

    #[test]
    fn confidential_client_json_has_its_secret() {
        let r = added(Some("gcs_local_Vq3"));
        assert_eq!(
            r.json().to_string(),
            r#"{"client_id":"6f1c2a8e","client_secret":"gcs_local_Vq3"}"#
        );
        assert_eq!(
            r.text(),
            "Registered application \"CRM sync\" in default.\nClient ID: 6f1c2a8e\n\
             Client secret (shown once): gcs_local_Vq3"
        );
    }

    #[test]
    fn public_client_json_has_no_secret() {
        let r = added(None);
        assert_eq!(r.json().to_string(), r#"{"client_id":"6f1c2a8e"}"#);
        assert_eq!(
            r.text(),
            "Registered application \"CRM sync\" in default.\nClient ID: 6f1c2a8e"
        );
    }

    #[test]
    fn rotated_secret_says_when_the_old_one_stops() {
        let r = SecretRotated {
            client_id: "6f1c2a8e".into(),
            client_secret: "gcs_local_N3w".into(),
            old_secret_expires_at: Timestamp::parse_rfc3339("2026-11-24T19:00:00Z").unwrap(),
        };
        assert_eq!(
            r.json().to_string(),
            r#"{"client_id":"6f1c2a8e","client_secret":"gcs_local_N3w","old_secret_expires_at":"2026-11-24T19:00:00Z"}"#
        );
        assert_eq!(
            r.text(),
            "New client secret for 6f1c2a8e (shown once): gcs_local_N3w\n\
             The previous secret keeps working until 2026-11-24T19:00:00Z."
        );
    }
}
