//! Mail delivery with lettre: SMTP when `mail.smtp_url` is set, else `.eml` files in the data
//! folder's `outbox/`.
//!
//! grantry's mail carries refresh tokens, so it is kept secret at rest and in transit: the
//! outbox folder is `0700` and each file is created `0600` under a name the outbox's readers
//! ignore, then renamed to `<id>.eml`, so no moment exists where a message is readable by
//! others or half written; SMTP must say how it uses TLS (`smtps://`, or `smtp://` with
//! `?tls=required`), and sending in clear needs `?tls=none` written out.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use grantry_core::mail::{Mailer, Message};

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

pub struct LettreMailer {
    transport: Transport,
    from: Mailbox,
}

/// What `mail.smtp_url` asks for, so the message can say what to write instead.
const SMTP_URL_FORMS: &str = "write smtps://user:pass@host (TLS from the start, port 465) or \
    smtp://user:pass@host:587?tls=required (STARTTLS); to send mail unencrypted on purpose, \
    on a network you trust, write smtp://host?tls=none";

/// Why mail cannot be sent with the configured settings. No variant shows `mail.smtp_url`,
/// which may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    #[error("mail.from {from:?} is not a mailbox: {err}")]
    From {
        from: String,
        err: lettre::address::AddressError,
    },
    #[error("mail.smtp_url is not usable: {0}")]
    SmtpUrl(lettre::transport::smtp::Error),
    /// `mail.smtp_url` does not say how it protects the mail; the message says what to write.
    #[error("mail.smtp_url {0}: {SMTP_URL_FORMS}")]
    SmtpSecurity(&'static str),
    #[error("mail.smtp_ca_file {}: {why}", path.display())]
    CaFile { path: PathBuf, why: String },
    #[error("cannot create {}: {err}", dir.display())]
    Outbox { dir: PathBuf, err: std::io::Error },
}

/// How an SMTP URL protects the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://...?tls=required`: STARTTLS, and no mail if the server does not offer it.
    StartTls,
    /// `smtp://...?tls=none`: in clear, as written.
    Clear,
}

/// The TLS rule for `mail.smtp_url`: how the URL protects the connection, and the URL to give
/// lettre (`tls=none` taken out, which lettre does not know). A plain `smtp://` URL, which
/// lettre would use in clear, is refused, as is `tls=opportunistic`, which anyone on the path
/// can turn into clear by hiding STARTTLS.
pub fn smtp_security(url: &str) -> Result<(SmtpSecurity, String), MailSetupError> {
    let refuse = |why| Err(MailSetupError::SmtpSecurity(why));
    let Ok(mut parsed) = url::Url::parse(url) else {
        return refuse("is not a URL");
    };
    let tls: Vec<String> = parsed
        .query_pairs()
        .filter(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned())
        .collect();
    let tls = match tls.as_slice() {
        [] => None,
        [one] => Some(one.as_str()),
        _ => return refuse("names tls= more than once"),
    };
    let security = match (parsed.scheme(), tls) {
        ("smtps", None | Some("required")) => SmtpSecurity::Implicit,
        ("smtps", Some(_)) => return refuse("is smtps://, which always uses TLS: drop its tls="),
        ("smtp", Some("required")) => SmtpSecurity::StartTls,
        ("smtp", Some("none")) => SmtpSecurity::Clear,
        ("smtp", None) => return refuse("would send mail, refresh tokens included, unencrypted"),
        ("smtp", Some("opportunistic")) => {
            return refuse(
                "asks for opportunistic STARTTLS, which anyone on the path can turn into no TLS",
            )
        }
        ("smtp", Some(_)) => return refuse("has an unknown tls= value"),
        _ => return refuse("must start with smtps:// or smtp://"),
    };
    if security == SmtpSecurity::Clear {
        let rest: Vec<(String, String)> = parsed
            .query_pairs()
            .filter(|(k, _)| k != "tls")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
    }
    Ok((security, parsed.into()))
}

/// The TLS parameters for `host`, trusting the certificates of `ca_file` besides the
/// system's.
fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, MailSetupError> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = ca_file {
        let ca_err = |why: String| MailSetupError::CaFile {
            path: path.to_path_buf(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(format!("cannot be read: {e}")))?;
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(ca_err(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| ca_err(format!("{e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(MailSetupError::SmtpUrl)
}

/// Creates the outbox folder, readable by this user only.
fn create_outbox(dir: &Path) -> Result<(), MailSetupError> {
    let err = |err| MailSetupError::Outbox {
        dir: dir.to_path_buf(),
        err,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).map_err(err)?;
        // An outbox made before this rule existed may be wider.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    #[cfg(not(unix))]
    builder.create(dir).map_err(err)?;
    Ok(())
}

/// Writes one message to the outbox as `<id>.eml`, created `0600`.
fn write_eml(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let id = uuid::Uuid::new_v4();
    let partial = dir.join(format!(".{id}.partial"));
    let done = dir.join(format!("{id}.eml"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&partial).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&partial, &done));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    renamed.map(|()| done)
}

impl LettreMailer {
    pub fn new(
        smtp_url: Option<&str>,
        from: &str,
        smtp_ca_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<Self, MailSetupError> {
        let from: Mailbox = from.parse().map_err(|err| MailSetupError::From {
            from: from.to_string(),
            err,
        })?;
        let transport = match smtp_url {
            Some(url) => {
                let (security, url) = smtp_security(url)?;
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map_err(MailSetupError::SmtpUrl)?;
                let host = url::Url::parse(&url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default();
                let builder = match security {
                    SmtpSecurity::Implicit => {
                        builder.tls(Tls::Wrapper(tls_parameters(&host, smtp_ca_file)?))
                    }
                    SmtpSecurity::StartTls => {
                        builder.tls(Tls::Required(tls_parameters(&host, smtp_ca_file)?))
                    }
                    SmtpSecurity::Clear => {
                        tracing::warn!(
                            "mail.smtp_url says tls=none: mail, refresh tokens included, is sent unencrypted"
                        );
                        builder
                    }
                };
                Transport::Smtp(builder.build())
            }
            None => {
                let dir = data_dir.join("outbox");
                create_outbox(&dir)?;
                Transport::Outbox(dir)
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
            Transport::Outbox(dir) => {
                let (dir, bytes) = (dir.clone(), email.formatted());
                tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
                    .await
                    .map_err(|e| format!("writing to the outbox failed: {e}"))?
                    .map(|_| ())
                    .map_err(|e| format!("writing to the outbox failed: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(url: &str) -> Result<(SmtpSecurity, String), String> {
        smtp_security(url).map_err(|e| e.to_string())
    }

    #[test]
    fn implicit_tls_and_required_starttls_are_accepted() {
        assert_eq!(
            security("smtps://u:p@smtp.example.com").unwrap(),
            (
                SmtpSecurity::Implicit,
                "smtps://u:p@smtp.example.com".into()
            )
        );
        assert_eq!(
            security("smtp://u:p@smtp.example.com:587?tls=required").unwrap(),
            (
                SmtpSecurity::StartTls,
                "smtp://u:p@smtp.example.com:587?tls=required".into()
            )
        );
    }

    #[test]
    fn plain_smtp_is_refused_saying_what_to_write_without_the_password() {
        for url in [
            "smtp://u:secret@smtp.example.com",
            "smtp://u:secret@smtp.example.com:25/",
            "smtp://u:secret@smtp.example.com?tls=opportunistic",
            "smtp://u:secret@smtp.example.com?tls=maybe",
            "smtp://u:secret@smtp.example.com?tls=none&tls=required",
            "smtps://u:secret@smtp.example.com?tls=none",
            "http://u:secret@smtp.example.com",
        ] {
            let err = security(url).unwrap_err();
            assert!(err.starts_with("mail.smtp_url "), "{url}: {err}");
            assert!(
                err.contains("smtp://user:pass@host:587?tls=required"),
                "{err}"
            );
            assert!(err.contains("smtps://"), "{err}");
            assert!(err.contains("?tls=none"), "{err}");
            assert!(!err.contains("secret"), "the password is shown: {err}");
        }
        let err = security("smtp://smtp.example.com").unwrap_err();
        assert!(err.contains("unencrypted"), "{err}");
        assert!(security("not a url").unwrap_err().contains("is not a URL"));
    }

    #[test]
    fn tls_none_is_the_explicit_opt_out_and_is_taken_out_for_lettre() {
        assert_eq!(
            security("smtp://relay.internal?tls=none").unwrap(),
            (SmtpSecurity::Clear, "smtp://relay.internal".into())
        );
        assert_eq!(
            security("smtp://relay.internal:2525/client.example?tls=none&x=1").unwrap(),
            (
                SmtpSecurity::Clear,
                "smtp://relay.internal:2525/client.example?x=1".into()
            )
        );
        let mailer = LettreMailer::new(
            Some("smtp://relay.internal?tls=none"),
            "grantry <grantry@example.com>",
            None,
            Path::new("/nonexistent"),
        );
        assert!(mailer.is_ok());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("grantry-mailer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let new = |ca: &Path| {
            LettreMailer::new(
                Some("smtp://smtp.example.com?tls=required"),
                "grantry <grantry@example.com>",
                Some(ca),
                &dir,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        let err = new(&ca).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(err.contains("ca.pem"), "{err}");
        let err = new(&dir.join("missing.pem")).unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn outbox_files_are_private_to_this_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("grantry-mailer-{}", uuid::Uuid::new_v4()));
        let mailer = LettreMailer::new(None, "grantry <grantry@example.com>", None, &dir).unwrap();
        let outbox = dir.join("outbox");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&outbox), 0o700);
        mailer
            .send(Message {
                to: vec![("Ann".into(), "ann@example.com".into())],
                subject: "Your refresh token".into(),
                body: "grt_local_secret".into(),
            })
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
        assert_eq!(mode(&files[0]), 0o600);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("Subject: Your refresh token"), "{text}");
        assert!(text.contains("grt_local_secret"), "{text}");

        // An outbox left wider by an older version is narrowed.
        std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o755)).unwrap();
        LettreMailer::new(None, "grantry <grantry@example.com>", None, &dir).unwrap();
        assert_eq!(mode(&outbox), 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
