//! `grantry key ...`: an API user's two secret keys (seed 002).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use grantry_core::admin::api_keys;
use grantry_core::admin::Ctx;
use grantry_core::Timestamp;

use crate::cli::{KeyCmd, KeyDeleteArgs, UserRef};
use crate::error::Result;
use crate::report::Report;

pub async fn run(cx: &Ctx<'_>, cmd: KeyCmd) -> Result<Box<dyn Report>> {
    let report: Box<dyn Report> = match cmd {
        KeyCmd::Generate(user) => Box::new(generate(cx, user).await?),
        KeyCmd::Delete(args) => Box::new(delete(cx, args).await?),
    };
    Ok(report)
}

/// A new secret key, shown once, with the ready-to-use bearer value.
pub struct KeyGenerated {
    pub(crate) username: String,
    pub(crate) key_id: String,
    pub(crate) slot: u8,
    pub(crate) secret: SecretString,
    /// `base64(<key id>:<secret>)`.
    pub(crate) bearer: SecretString,
}

async fn generate(cx: &Ctx<'_>, user: UserRef) -> Result<KeyGenerated> {
    let key = api_keys::generate(cx, &user.org, &user.username).await?;
    Ok(KeyGenerated {
        username: user.username,
        key_id: key.key_id,
        slot: key.slot,
        secret: key.secret,
        bearer: key.bearer,
    })
}

impl Report for KeyGenerated {
    fn json(&self) -> Value {
        json!({
            "key_id": self.key_id,
            "slot": self.slot,
            "secret": self.secret.expose_secret(),
            "bearer": self.bearer.expose_secret(),
        })
    }

    fn text(&self) -> String {
        format!(
            "Generated secret key {slot} for {user}.\nKey ID: {id}\nSlot: {slot}\nSecret key (shown once): {secret}\n\
             Use it as: Authorization: Bearer {bearer}",
            slot = self.slot,
            user = self.username,
            id = self.key_id,
            secret = self.secret.expose_secret(),
            bearer = self.bearer.expose_secret(),
        )
    }
}

/// A deleted key, which keeps working until `stops_at`.
pub struct KeyDeleted {
    pub(crate) username: String,
    pub(crate) deleted_slot: u8,
    pub(crate) stops_at: Timestamp,
    /// The key from slot 2 is now key 1.
    pub(crate) promoted: bool,
}

async fn delete(cx: &Ctx<'_>, args: KeyDeleteArgs) -> Result<KeyDeleted> {
    let deleted = api_keys::delete(cx, &args.org, &args.username, args.slot).await?;
    Ok(KeyDeleted {
        username: args.username,
        deleted_slot: deleted.deleted_slot,
        stops_at: deleted.stops_at,
        promoted: deleted.promoted,
    })
}

impl Report for KeyDeleted {
    fn json(&self) -> Value {
        json!({
            "deleted_slot": self.deleted_slot,
            "stops_at": self.stops_at.to_rfc3339(),
            "promoted": self.promoted,
        })
    }

    fn text(&self) -> String {
        let mut text = format!(
            "Deleted secret key {} of {}. It keeps working until {}, then stops everywhere.",
            self.deleted_slot,
            self.username,
            self.stops_at.to_rfc3339()
        );
        if self.promoted {
            text.push_str("\nThe key in slot 2 is now key 1.");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_json_is_key_id_slot_secret_bearer() {
        let r = KeyGenerated {
            username: "crm-bot".into(),
            key_id: "6f1c2a8e".into(),
            slot: 2,
            secret: "gsk_local_yJ3".into(),
            bearer: "NmYxYzJhOGU6Z3NrX2xvY2FsX3lKMw==".into(),
        };
        assert_eq!(
            r.json().to_string(),
            r#"{"key_id":"6f1c2a8e","slot":2,"secret":"gsk_local_yJ3","bearer":"NmYxYzJhOGU6Z3NrX2xvY2FsX3lKMw=="}"#
        );
        assert_eq!(
            r.text(),
            "Generated secret key 2 for crm-bot.\nKey ID: 6f1c2a8e\nSlot: 2\n\
             Secret key (shown once): gsk_local_yJ3\n\
             Use it as: Authorization: Bearer NmYxYzJhOGU6Z3NrX2xvY2FsX3lKMw=="
        );
    }

    #[test]
    fn deleted_key_says_until_when_it_works_and_whether_slot_2_moved() {
        let stops_at = Timestamp::parse_rfc3339("2026-11-23T19:48:22Z").unwrap();
        let r = KeyDeleted {
            username: "crm-bot".into(),
            deleted_slot: 1,
            stops_at,
            promoted: true,
        };
        assert_eq!(
            r.json().to_string(),
            r#"{"deleted_slot":1,"stops_at":"2026-11-23T19:48:22Z","promoted":true}"#
        );
        assert_eq!(
            r.text(),
            "Deleted secret key 1 of crm-bot. It keeps working until 2026-11-23T19:48:22Z, then stops everywhere.\n\
             The key in slot 2 is now key 1."
        );
        let kept = KeyDeleted {
            promoted: false,
            ..r
        };
        assert_eq!(
            kept.json().to_string(),
            r#"{"deleted_slot":1,"stops_at":"2026-11-23T19:48:22Z","promoted":false}"#
        );
        assert!(!kept.text().contains("slot 2"));
    }
}
