//! Mail delivery with lettre: SMTP when `mail.smtp_url` is set, else `.eml` files in the data
//! folder's `outbox/`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use grantry_core::mail::{Mailer, Message};

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

pub struct LettreMailer {
    transport: Transport,
    from: Mailbox,
}

/// Why mail cannot be sent with the configured settings.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    #[error("mail.from {from:?} is not a mailbox: {err}")]
    From {
        from: String,
        err: lettre::address::AddressError,
    },
    #[error("mail.smtp_url is not usable: {0}")]
    SmtpUrl(lettre::transport::smtp::Error),
    #[error("cannot create {}: {err}", dir.display())]
    Outbox { dir: PathBuf, err: std::io::Error },
}

impl LettreMailer {
    pub fn new(
        smtp_url: Option<&str>,
        from: &str,
        data_dir: &Path,
    ) -> Result<Self, MailSetupError> {
        let from: Mailbox = from.parse().map_err(|err| MailSetupError::From {
            from: from.to_string(),
            err,
        })?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(MailSetupError::SmtpUrl)?
                    .build(),
            ),
            None => {
                let dir = data_dir.join("outbox");
                std::fs::create_dir_all(&dir).map_err(|err| MailSetupError::Outbox {
                    dir: dir.clone(),
                    err,
                })?;
                Transport::Outbox(AsyncFileTransport::new(dir))
            }
        };
        Ok(LettreMailer { transport, from })
    }
}

#[async_trait]
impl Mailer for LettreMailer {
    async fn send(&self, msg: Message) -> Result<(), String> {
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(msg.subject)
            .header(ContentType::TEXT_PLAIN);
        for (name, addr) in msg.to {
            let addr = addr
                .parse()
                .map_err(|e| format!("bad address {addr}: {e}"))?;
            b = b.to(Mailbox::new(Some(name), addr));
        }
        let email = b
            .body(msg.body)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        match &self.transport {
            Transport::Smtp(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP delivery failed: {e}")),
            Transport::Outbox(t) => t
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| format!("writing to the outbox failed: {e}")),
        }
    }
}
