//! Configuration: a TOML file, overridden by `GRANTRY_<SECTION>__<KEY>` environment variables,
//! overridden by flags (docs/architecture.md, running it). Loaded once, validated into typed
//! settings, passed down.
//!
//! Unknown keys are an error, in the file and in the environment alike: every `GRANTRY_*`
//! variable except those in [`env::NOT_CONFIGURATION`] is read as a key, so a typo is refused with a
//! message naming the key and where it came from instead of being silently ignored. The
//! database and SMTP URLs, which may carry passwords, are held as secrets: the configuration's
//! `Debug` never shows them.

mod env;
mod sections;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::ExposeSecret;
use serde::Deserialize;

use grantry_core::credential::{DeriveKey, DERIVE_KEY_LEN};
use grantry_core::settings::{
    ApiKeySettings, AuditSettings, ConsoleSettings, LimitSettings, OAuth1Settings, Pod,
    SessionSettings, Settings, TokenSettings,
};

use env::{env_key, unknown_key_message};
pub use sections::*;

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub http: HttpSection,
    pub tokens: TokensSection,
    pub api_keys: ApiKeysSection,
    pub limits: LimitsSection,
    pub audit: AuditSection,
    pub console: ConsoleSection,
    pub admin: AdminSection,
    pub sessions: SessionsSection,
    pub oauth1: OAuth1Section,
    pub database: DatabaseSection,
    pub pod: PodSection,
    /// `[[pods]]`: every pod of the platform.
    pub pods: Vec<PodEntry>,
    pub log: LogSection,
    pub metrics: MetricsSection,
    pub mail: MailSection,
    /// The data folder (SQLite file, mail outbox); `--data`.
    pub data: Option<PathBuf>,
}

/// Values given as flags, the last and strongest layer.
#[derive(Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[REDACTED]"),
            )
            .field("data", &self.data)
            .field("listen", &self.listen)
            .finish()
    }
}

const ENV_PREFIX: &str = "GRANTRY_";

/// Why the configuration cannot be used; the message names the file or key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    /// The file or the environment holds an unknown key or a value of the wrong form.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The settings break a rule (e.g. `tokens.reissue_after` not below `tokens.access_ttl`).
    #[error("{0}")]
    Settings(String),
}

impl Config {
    /// Loads the file (if any), then the environment, then the flags.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::MissingFile(f.to_path_buf()));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig
            .merge(Env::prefixed(ENV_PREFIX).filter_map(|k| env_key(k.as_str()).map(Into::into)));
        if let Some(u) = &flags.database_url {
            fig = fig.merge(Serialized::default("database.url", u));
        }
        if let Some(d) = &flags.data {
            fig = fig.merge(Serialized::default("data", d));
        }
        if let Some(l) = &flags.listen {
            fig = fig.merge(Serialized::default("server.listen", l));
        }
        fig.extract::<Config>().map_err(|errors| {
            let lines: Vec<String> = errors
                .into_iter()
                .map(|e| match &e.kind {
                    figment::error::Kind::UnknownField(field, expected) => {
                        unknown_key_message(&fig, &e.path, field, expected)
                    }
                    _ => e.to_string(),
                })
                .collect();
            ConfigError::Invalid(lines.join("\n"))
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| PathBuf::from("grantry-data"))
    }

    /// The database URL: the configured one, else the embedded SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.expose_secret().to_string(),
            None => format!("sqlite://{}", self.data_dir().join("grantry.db").display()),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The SMTP URL, when mail goes through SMTP.
    pub fn smtp_url(&self) -> Option<&str> {
        self.mail.smtp_url.as_ref().map(|u| u.expose_secret())
    }

    /// Where the OAuth 1.0a key is kept: `oauth1.key_file`, else `oauth1.key` in the data
    /// folder.
    pub fn oauth1_key_path(&self) -> PathBuf {
        self.oauth1
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir().join("oauth1.key"))
    }

    /// The OAuth 1.0a key (docs/architecture.md, OAuth 1.0a): read from its file, which
    /// holds 64 hex digits. The default file in the data folder is made on first use
    /// (readable by its owner only); a configured `oauth1.key_file` must exist.
    pub fn oauth1_key(&self) -> Result<DeriveKey, ConfigError> {
        let path = self.oauth1_key_path();
        let shown = path.display();
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_key(text.trim()).ok_or_else(|| {
                ConfigError::Settings(format!(
                    "OAuth 1.0a key file {shown} must hold {} hex digits (make one with:                      openssl rand -hex {DERIVE_KEY_LEN} > {shown})",
                    DERIVE_KEY_LEN * 2
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.oauth1.key_file.is_none() => {
                make_key_file(&path).map_err(|e| {
                    ConfigError::Settings(format!("cannot create the OAuth 1.0a key file {shown}: {e}"))
                })?;
                self.oauth1_key()
            }
            Err(e) => Err(ConfigError::Settings(format!(
                "cannot read the OAuth 1.0a key file {shown} (oauth1.key_file): {e};                  make one with: openssl rand -hex {DERIVE_KEY_LEN} > {shown}"
            ))),
        }
    }

    /// The mailer of `[mail]`, its settings checked ([`crate::mailer`]).
    pub fn mailer(&self) -> Result<crate::mailer::LettreMailer, crate::mailer::MailSetupError> {
        crate::mailer::LettreMailer::new(
            self.smtp_url(),
            &self.mail.from,
            self.mail.smtp_ca_file.as_deref(),
            &self.data_dir(),
        )
    }

    /// The URL clients reach this pod at (the issuer): `pod.public_url`, else the listen
    /// address, which must then be one clients can use.
    fn public_url(&self) -> Result<String, ConfigError> {
        if let Some(u) = &self.pod.public_url {
            return Ok(u.trim_end_matches('/').to_string());
        }
        let listen = &self.server.listen;
        let host = listen.rsplit_once(':').map_or(listen.as_str(), |(h, _)| h);
        if matches!(host, "0.0.0.0" | "[::]" | "::" | "") {
            return Err(ConfigError::Settings(format!(
                "server.listen {listen:?} listens on every interface, so it is not a URL clients can use: \
                 set pod.public_url to the URL clients reach this pod at (e.g. https://api.example.com)"
            )));
        }
        Ok(format!("http://{listen}"))
    }

    /// `http.trusted_proxies` as networks: an address is a network of one.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.http
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Settings(format!(
                            "http.trusted_proxies: {p:?} is not an address or a network (e.g. \"10.0.0.5\" or \"10.0.0.0/8\")"
                        ))
                    })
            })
            .collect()
    }

    /// The connection limits, validated.
    pub fn limits(&self) -> Result<grantry_server::Limits, ConfigError> {
        let l = grantry_server::Limits {
            max_connections: self.http.max_connections,
            max_headers: self.http.max_headers,
            max_header_bytes: self.http.max_header_bytes,
            header_read_timeout: self.http.header_read_timeout.0,
            body_read_timeout: self.http.body_read_timeout.0,
            drain_timeout: self.http.drain_timeout.0,
        };
        l.validate().map_err(ConfigError::Settings)?;
        Ok(l)
    }

    /// The protocol settings, validated.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let s = Settings {
            pod_id: self.pod.id.clone(),
            pod_name: self.pod.name.clone().unwrap_or_else(|| self.pod.id.clone()),
            public_url: self.public_url()?,
            pods: self
                .pods
                .iter()
                .map(|p| Pod {
                    id: p.id.clone(),
                    name: p.name.clone().unwrap_or_else(|| p.id.clone()),
                    url: p.url.trim_end_matches('/').to_string(),
                })
                .collect(),
            tokens: TokenSettings {
                access_ttl: self.tokens.access_ttl.0,
                reissue_after: self.tokens.reissue_after.0,
                reissue_policy: self.tokens.reissue_policy,
                rotation_grace: self.tokens.rotation_grace.0,
                key_rotation: self.tokens.key_rotation.0,
            },
            api_keys: ApiKeySettings {
                delete_grace: self.api_keys.delete_grace.0,
                token_ttl: self.api_keys.token_ttl.0,
            },
            limits: LimitSettings {
                source_failures: self.limits.source_failures,
                source_period: self.limits.source_period.0,
                lockout_after: self.limits.lockout_after,
                lockout_base: self.limits.lockout_base.0,
                lockout_max: self.limits.lockout_max.0,
                failure_memory: self.limits.failure_memory.0,
            },
            audit: AuditSettings {
                failure_window: self.audit.failure_window.0,
                retention: self.audit.retention.0,
            },
            console: ConsoleSettings {
                idle_timeout: self.console.idle_timeout.0,
            },
            oauth1: OAuth1Settings {
                timestamp_window: self.oauth1.timestamp_window.0,
                key: None,
            },
            sessions: SessionSettings {
                idle_timeout: self.sessions.idle_timeout.0,
                max_per_org: self.sessions.max_per_org,
            },
        };
        s.validate().map_err(ConfigError::Settings)?;
        Ok(s)
    }
}

impl Config {
    /// The digest of the operator token the server accepts (`admin.operator_token_sha256`).
    pub fn operator_token(&self) -> Result<Option<grantry_core::credential::Digest>, ConfigError> {
        let Some(hex) = self.admin.operator_token_sha256.as_deref() else {
            return Ok(None);
        };
        from_hex(hex)
            .map(|b| Some(grantry_core::credential::Digest(b)))
            .ok_or_else(|| {
                ConfigError::Settings(
                    "admin.operator_token_sha256 must be 64 hex digits, as `grantry operator-token` prints them".into(),
                )
            })
    }
}

/// 32 bytes written as 64 hex digits (the OAuth 1.0a key file, the operator token's digest).
fn from_hex(hex: &str) -> Option<[u8; DERIVE_KEY_LEN]> {
    if hex.len() != DERIVE_KEY_LEN * 2 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; DERIVE_KEY_LEN];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// Bytes as lower-case hex digits, as [`from_hex`] reads them.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_key(hex: &str) -> Option<DeriveKey> {
    from_hex(hex).map(DeriveKey::new)
}

/// Writes a new random key to `path`, readable by its owner only; if another process made
/// the file first, its key is kept.
fn make_key_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let bytes = grantry_core::credential::random_bytes::<DERIVE_KEY_LEN>();
    let hex = to_hex(&bytes);
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{hex}\n").as_bytes())?;
            f.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
