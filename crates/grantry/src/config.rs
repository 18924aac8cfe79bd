//! Configuration: a TOML file, overridden by `GRANTRY_<SECTION>__<KEY>` environment variables,
//! overridden by flags (docs/architecture.md, running it). Loaded once, validated into typed settings, passed down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer};

use grantry_core::settings::{ApiKeySettings, ReissuePolicy, Settings, TokenSettings};

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
#[serde(default)]
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
#[serde(default)]
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
#[serde(default)]
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

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct SessionsSection {
    pub idle_timeout: Dur,
    pub max_per_org: u32,
}

impl Default for SessionsSection {
    fn default() -> Self {
        SessionsSection {
            idle_timeout: Dur(Duration::from_secs(30 * 60)),
            max_per_org: 100,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DatabaseSection {
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PodSection {
    pub id: String,
    pub public_url: Option<String>,
}

impl Default for PodSection {
    fn default() -> Self {
        PodSection {
            id: "local".into(),
            public_url: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct MailSection {
    pub smtp_url: Option<String>,
    pub from: String,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection {
            smtp_url: None,
            from: "grantry <grantry@grantry.local>".into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub server: ServerSection,
    pub tokens: TokensSection,
    pub api_keys: ApiKeysSection,
    pub sessions: SessionsSection,
    pub database: DatabaseSection,
    pub pod: PodSection,
    pub mail: MailSection,
    /// The data folder (SQLite file, mail outbox); `--data`.
    pub data: Option<PathBuf>,
}

/// Values given as flags, the last and strongest layer.
#[derive(Debug, Default, serde::Serialize)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Config {
    /// Loads the file (if any), then the environment, then the flags.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, String> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            if !f.exists() {
                return Err(format!("config file {} does not exist", f.display()));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(
            Env::prefixed("GRANTRY_")
                .filter(|k| {
                    let k = k.as_str();
                    !k.starts_with("test_") && k != "config" && k != "log"
                })
                .map(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    match k.as_str() {
                        // The documented short form for the most common setting.
                        "database_url" => "database.url".into(),
                        _ => k.replace("__", ".").into(),
                    }
                }),
        );
        if let Some(u) = &flags.database_url {
            fig = fig.merge(Serialized::default("database.url", u));
        }
        if let Some(d) = &flags.data {
            fig = fig.merge(Serialized::default("data", d));
        }
        if let Some(l) = &flags.listen {
            fig = fig.merge(Serialized::default("server.listen", l));
        }
        fig.extract::<Config>()
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| PathBuf::from("grantry-data"))
    }

    /// The database URL: the configured one, else the embedded SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir().join("grantry.db").display()),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The protocol settings, validated.
    pub fn settings(&self) -> Result<Settings, String> {
        let s = Settings {
            pod_id: self.pod.id.clone(),
            public_url: self
                .pod
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.server.listen)),
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
        };
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_all_documented_forms() {
        assert_eq!(parse_duration("4h").unwrap(), Duration::from_secs(14400));
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature
    fn file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "g.toml",
                "[tokens]\naccess_ttl = \"2h\"\nreissue_after = 3600\n[pod]\nid = \"eu-1\"\n[database]\nurl = \"sqlite://file.db\"",
            )?;
            jail.set_env("GRANTRY_TOKENS__ACCESS_TTL", "5h");
            jail.set_env("GRANTRY_DATABASE_URL", "postgres://env/db");
            let flags = Overrides {
                database_url: Some("postgres://flag/db".into()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("g.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.tokens.access_ttl.0, Duration::from_secs(5 * 3600));
            assert_eq!(c.tokens.reissue_after.0, Duration::from_secs(3600));
            assert_eq!(c.pod.id, "eu-1");
            assert_eq!(c.database_url(), "postgres://flag/db");
            let c = Config::load(Some(Path::new("g.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.database_url(), "postgres://env/db");
            Ok(())
        });
    }

    #[test]
    fn settings_are_validated() {
        let mut c = Config::default();
        c.tokens.reissue_after = Dur(Duration::from_secs(5 * 3600));
        assert!(c.settings().unwrap_err().contains("reissue_after"));
    }
}
