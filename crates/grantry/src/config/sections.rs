//! The configuration's sections, one struct per `[section]`, each with the defaults the
//! settings they feed declare, and the duration syntax they share.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use grantry_core::settings::{
    ApiKeySettings, AuditSettings, ConsoleSettings, LimitSettings, OAuth1Settings, ReissuePolicy,
    SessionSettings, TokenSettings,
};

/// A duration written as `"4h"`, `"300s"`, `"10m"`, or whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"4h"`, `"300s"`, `"10m"`, `"1h 30m"` or a plain number of seconds.
pub fn parse_duration(t: &str) -> Result<Duration, String> {
    let t = t.trim();
    if let Ok(s) = t.parse::<u64>() {
        return Ok(Duration::from_secs(s));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{t:?} is not a duration like \"4h\", \"300s\" or \"10m\": {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub listen: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensSection {
    pub access_ttl: Dur,
    pub reissue_after: Dur,
    pub reissue_policy: ReissuePolicy,
    pub rotation_grace: Dur,
    pub key_rotation: Dur,
}

impl Default for TokensSection {
    fn default() -> Self {
        let d = TokenSettings::default();
        TokensSection {
            access_ttl: Dur(d.access_ttl),
            reissue_after: Dur(d.reissue_after),
            reissue_policy: d.reissue_policy,
            rotation_grace: Dur(d.rotation_grace),
            key_rotation: Dur(d.key_rotation),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeysSection {
    pub delete_grace: Dur,
    pub token_ttl: Dur,
}

impl Default for ApiKeysSection {
    fn default() -> Self {
        let d = ApiKeySettings::default();
        ApiKeysSection {
            delete_grace: Dur(d.delete_grace),
            token_ttl: Dur(d.token_ttl),
        }
    }
}

/// `[limits]`: the limits on guessing secrets (README, Security).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub source_failures: u32,
    pub source_period: Dur,
    pub lockout_after: u32,
    pub lockout_base: Dur,
    pub lockout_max: Dur,
    pub failure_memory: Dur,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = LimitSettings::default();
        LimitsSection {
            source_failures: d.source_failures,
            source_period: Dur(d.source_period),
            lockout_after: d.lockout_after,
            lockout_base: Dur(d.lockout_base),
            lockout_max: Dur(d.lockout_max),
            failure_memory: Dur(d.failure_memory),
        }
    }
}

/// `[audit]`: how refused authentications are merged, and how long events are kept.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    pub failure_window: Dur,
    pub retention: Dur,
}

impl Default for AuditSection {
    fn default() -> Self {
        let d = AuditSettings::default();
        AuditSection {
            failure_window: Dur(d.failure_window),
            retention: Dur(d.retention),
        }
    }
}

/// `[console]`: the admin console's sessions.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    pub idle_timeout: Dur,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            idle_timeout: Dur(ConsoleSettings::default().idle_timeout),
        }
    }
}

/// `[oauth1]`: OAuth 1.0a (docs/architecture.md, OAuth 1.0a).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth1Section {
    pub timestamp_window: Dur,
    /// The key client secrets and token secrets are derived from; default
    /// `<data>/oauth1.key`, made on first use.
    pub key_file: Option<PathBuf>,
}

impl Default for OAuth1Section {
    fn default() -> Self {
        OAuth1Section {
            timestamp_window: Dur(OAuth1Settings::default().timestamp_window),
            key_file: None,
        }
    }
}

/// `[sessions]`: the XML API's `Login` sessions (`grantry_core::settings::SessionSettings`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsSection {
    pub idle_timeout: Dur,
    pub max_per_org: u32,
}

impl Default for SessionsSection {
    fn default() -> Self {
        SessionsSection {
            idle_timeout: Dur(SessionSettings::default().idle_timeout),
            max_per_org: SessionSettings::default().max_per_org,
        }
    }
}

/// `[http]`: what one connection, and all of them together, may cost the server
/// (`grantry_server::Limits`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    pub max_connections: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: Dur,
    pub body_read_timeout: Dur,
    pub drain_timeout: Dur,
    /// Addresses or networks (`10.0.0.0/8`) of proxies whose `X-Forwarded-For` names the
    /// client, for the limits on guessing secrets.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = grantry_server::Limits::default();
        HttpSection {
            max_connections: d.max_connections,
            max_headers: d.max_headers,
            max_header_bytes: d.max_header_bytes,
            header_read_timeout: Dur(d.header_read_timeout),
            body_read_timeout: Dur(d.body_read_timeout),
            drain_timeout: Dur(d.drain_timeout),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://PATH` or `postgres://...`, which may carry a password.
    pub url: Option<SecretString>,
    /// PostgreSQL: the most connections one instance opens.
    pub max_connections: u32,
    /// PostgreSQL: how long a request waits for a connection before it is answered 503.
    pub acquire_timeout: Dur,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        let d = grantry_store::PoolSettings::default();
        DatabaseSection {
            url: None,
            max_connections: d.max_connections,
            acquire_timeout: Dur(d.acquire_timeout),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodSection {
    pub id: String,
    /// A display name (e.g. "EU 1"); the id when not set.
    pub name: Option<String>,
    pub public_url: Option<String>,
}

impl Default for PodSection {
    fn default() -> Self {
        PodSection {
            id: "local".into(),
            name: None,
            public_url: None,
        }
    }
}

/// One entry of `[[pods]]`: a pod of the platform, this one or another.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodEntry {
    pub id: String,
    /// The id when not set.
    pub name: Option<String>,
    /// The base URL of that pod's API host.
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSection {
    /// `smtp://` or `smtps://user:pass@host`, which may carry a password.
    pub smtp_url: Option<SecretString>,
    pub from: String,
    /// A PEM file of the certificate(s) to trust for the SMTP server, besides the system's
    /// (a private or self-signed server).
    pub smtp_ca_file: Option<PathBuf>,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection {
            smtp_url: None,
            from: "grantry <grantry@grantry.local>".into(),
            smtp_ca_file: None,
        }
    }
}

/// How log lines are written (`[log]`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the request's fields (request id among them).
    Json,
}

/// `[admin]`: the admin API (docs/admin-api.md).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSection {
    /// The SHA-256 (hex) of the platform operator's token (`grantry operator-token`); unset,
    /// no one can create organizations through the admin API.
    pub operator_token_sha256: Option<String>,
}

/// `GET /metrics` (`[metrics]`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    pub enabled: bool,
    /// A listen address of its own (e.g. `127.0.0.1:9090`); unset serves it on
    /// `server.listen` beside the APIs.
    pub listen: Option<String>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            listen: None,
        }
    }
}
