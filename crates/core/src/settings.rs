//! The protocol settings core needs, validated once and passed down (no globals).

use std::time::Duration;

/// What the token endpoint does when asked for a new access token inside the re-issue window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReissuePolicy {
    /// Answer with the same access token and its remaining lifetime (the original product).
    Reuse,
    /// Answer HTTP 429 with `Retry-After`.
    Reject,
}

/// Token lifetimes and rules (docs/architecture.md, token rules).
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub access_ttl: Duration,
    pub reissue_after: Duration,
    pub reissue_policy: ReissuePolicy,
    /// How long a rotated refresh token may be presented again and get the same answer
    /// (a response lost on the way), before a reuse revokes its family.
    pub rotation_grace: Duration,
    /// How long a JWT signing key signs before its successor (published a period ahead) takes
    /// over.
    pub key_rotation: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            access_ttl: Duration::from_secs(4 * 3600),
            reissue_after: Duration::from_secs(3 * 3600),
            reissue_policy: ReissuePolicy::Reuse,
            rotation_grace: Duration::from_secs(10),
            key_rotation: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// API secret key rules (docs/architecture.md, XML API sessions).
#[derive(Clone, Debug)]
pub struct ApiKeySettings {
    pub delete_grace: Duration,
    pub token_ttl: Duration,
}

impl Default for ApiKeySettings {
    fn default() -> Self {
        ApiKeySettings {
            delete_grace: Duration::from_secs(300),
            token_ttl: Duration::from_secs(3600),
        }
    }
}

/// Limits on guessing (docs/architecture.md, limits): failed authentications are counted per
/// source address and door in memory, and per account, client or key in the store, where
/// they hold across instances.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    /// Failed authentications one source address may make at one door in a burst...
    pub source_failures: u32,
    /// ...and the time in which that many are allowed again.
    pub source_period: Duration,
    /// Failures of one account, client or key before it is locked.
    pub lockout_after: u32,
    /// The first lockout; each further failure doubles it...
    pub lockout_base: Duration,
    /// ...up to this cap, so a victim's sign-in is delayed, never barred for good.
    pub lockout_max: Duration,
    /// Failures older than this are forgotten: the count starts again.
    pub failure_memory: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            source_failures: 20,
            source_period: Duration::from_secs(60),
            lockout_after: 5,
            lockout_base: Duration::from_secs(1),
            lockout_max: Duration::from_secs(15 * 60),
            failure_memory: Duration::from_secs(24 * 3600),
        }
    }
}

/// How the audit log is kept (docs/architecture.md, audit aggregation and the sweeper).
#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// Refused authentications of one credential inside this window share one audit event,
    /// which counts them.
    pub failure_window: Duration,
    /// Audit events older than this are purged by the sweeper.
    pub retention: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            failure_window: Duration::from_secs(3600),
            retention: Duration::from_secs(400 * 24 * 3600),
        }
    }
}

/// The admin console's sessions (docs/architecture.md, the console).
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// A console session not used for this long is signed out (it may live up to
    /// [`ConsoleSettings::touch`] longer, never less).
    pub idle_timeout: Duration,
}

impl ConsoleSettings {
    /// How stale a session's recorded last use may get before a request records it again:
    /// [`touch_interval`] of the idle timeout. A session is live while
    /// `now <= last_seen_at + idle_timeout + touch`.
    pub fn touch(&self) -> Duration {
        touch_interval(self.idle_timeout)
    }
}

/// `min(1 minute, idle_timeout / 10)`: how often a session in use records its last use, so
/// that it costs one durable write per interval rather than one per request, and the slack
/// by which it may outlive its idle timeout (docs/architecture.md, XML API sessions).
pub fn touch_interval(idle_timeout: Duration) -> Duration {
    (idle_timeout / 10).min(Duration::from_secs(60))
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The XML API's `Login` sessions (docs/architecture.md, XML API sessions).
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// A session not used for this long ends (it may live up to [`SessionSettings::touch`]
    /// longer, never less).
    pub idle_timeout: Duration,
    /// At most this many live sessions per org.
    pub max_per_org: u32,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout: Duration::from_secs(30 * 60),
            max_per_org: 20,
        }
    }
}

impl SessionSettings {
    /// How stale a session's recorded last use may get before a call records it again:
    /// [`touch_interval`] of the idle timeout. A session is live while
    /// `now <= last_seen_at + idle_timeout + touch`.
    pub fn touch(&self) -> Duration {
        touch_interval(self.idle_timeout)
    }
}

impl LimitSettings {
    /// How long a subject with `failures` counted failures is locked for: nothing below
    /// `lockout_after`, then `lockout_base` doubled per further failure, capped at
    /// `lockout_max`.
    pub fn lockout(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.lockout_after)?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(
            self.lockout_base
                .checked_mul(factor)
                .map_or(self.lockout_max, |d| d.min(self.lockout_max)),
        )
    }
}

/// Everything the protocol logic is configured by.
#[derive(Clone, Debug)]
pub struct Settings {
    /// This deployment's pod id; every credential minted here carries it.
    pub pod_id: String,
    /// This pod's display name (`pod.name`; the id when not set).
    pub pod_name: String,
    /// The public base URL of this pod's API host.
    pub public_url: String,
    /// Every pod of the platform (`[[pods]]`), this one included: what `GET /pods` lists and
    /// what a refusal of another pod's credential names (docs/architecture.md, Pods).
    pub pods: Vec<Pod>,
    pub tokens: TokenSettings,
    pub api_keys: ApiKeySettings,
    pub limits: LimitSettings,
    pub audit: AuditSettings,
    pub console: ConsoleSettings,
    pub oauth1: OAuth1Settings,
    pub sessions: SessionSettings,
}

/// One regional deployment of the platform (docs/architecture.md, Pods).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pod {
    pub id: String,
    pub name: String,
    /// The base URL of the pod's API host.
    pub url: String,
}

/// The pod a credential from elsewhere belongs to, as a refusal names it: its id, and its name
/// and URL when the pods table lists it.
#[derive(Clone, Copy, Debug)]
pub struct ForeignPod<'a> {
    pub id: &'a str,
    pub known: Option<&'a Pod>,
}

impl std::fmt::Display for ForeignPod<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.known {
            Some(p) if p.name != p.id => write!(f, "pod {} ({}) at {}", p.id, p.name, p.url),
            Some(p) => write!(f, "pod {} at {}", p.id, p.url),
            None => write!(
                f,
                "pod {}, which this pod's table of pods does not list",
                self.id
            ),
        }
    }
}

/// OAuth 1.0a (docs/architecture.md, OAuth 1.0a).
#[derive(Clone, Debug)]
pub struct OAuth1Settings {
    /// How far a request's `oauth_timestamp` may be from the server's clock, either way
    /// (RFC 5849 §3.3); its nonce is remembered that long.
    pub timestamp_window: Duration,
    /// The key client secrets and token secrets are derived from; without it, OAuth 1.0a is
    /// refused and client secrets are minted at random.
    pub key: Option<crate::credential::DeriveKey>,
}

impl Default for OAuth1Settings {
    fn default() -> Self {
        OAuth1Settings {
            timestamp_window: Duration::from_secs(300),
            key: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pod_id: "local".into(),
            pod_name: "local".into(),
            public_url: "http://127.0.0.1:8080".into(),
            pods: Vec::new(),
            tokens: TokenSettings::default(),
            api_keys: ApiKeySettings::default(),
            limits: LimitSettings::default(),
            audit: AuditSettings::default(),
            console: ConsoleSettings::default(),
            oauth1: OAuth1Settings::default(),
            sessions: SessionSettings::default(),
        }
    }
}

impl Settings {
    /// When a credential carries the pod id `pod` and that is not this pod: the pod it
    /// belongs to, which its refusal names (docs/architecture.md, Pods).
    pub fn foreign_pod<'a>(&'a self, pod: &'a str) -> Option<ForeignPod<'a>> {
        (pod != self.pod_id).then(|| ForeignPod {
            id: pod,
            known: self.pods.iter().find(|p| p.id == pod),
        })
    }

    /// The pods table as `GET /pods` serves it: every pod configured, this one first (with
    /// this deployment's own id, name and URL even when the table leaves it out).
    pub fn pod_table(&self) -> Vec<Pod> {
        let this = Pod {
            id: self.pod_id.clone(),
            name: self.pod_name.clone(),
            url: self.issuer().to_string(),
        };
        std::iter::once(this)
            .chain(self.pods.iter().filter(|p| p.id != self.pod_id).cloned())
            .collect()
    }

    /// The issuer identifier (RFC 8414 §2, RFC 9207): the public URL without a trailing
    /// slash, the one string in the metadata, the authorization response, JWT `iss` and
    /// introspection alike.
    pub fn issuer(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// Whether browser cookies are marked `Secure`: always, except when the public URL is
    /// plain HTTP on a loopback address (a local trial, where the browser would otherwise
    /// drop them).
    pub fn secure_cookies(&self) -> bool {
        let Ok(u) = url::Url::parse(&self.public_url) else {
            return true;
        };
        let loopback = match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        !(u.scheme() == "http" && loopback)
    }

    /// Checks the rules the settings must follow, with a message that says what to change.
    pub fn validate(&self) -> Result<(), String> {
        let url_ok = url::Url::parse(&self.public_url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none()
        });
        if !url_ok {
            return Err(format!(
                "pod.public_url {:?} must be the http(s) URL clients reach this pod at, without a query or fragment, e.g. https://api.example.com",
                self.public_url
            ));
        }
        let pod_id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= 32
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !pod_id_ok(&self.pod_id) {
            return Err(format!(
                "pod.id {:?} must be 1-32 characters of letters, digits and '-'",
                self.pod_id
            ));
        }
        let name_ok = |n: &str| {
            !n.trim().is_empty() && n.chars().count() <= 64 && !n.chars().any(char::is_control)
        };
        if !name_ok(&self.pod_name) {
            return Err(format!(
                "pod.name {:?} must be 1-64 characters without control characters",
                self.pod_name
            ));
        }
        for (i, p) in self.pods.iter().enumerate() {
            if !name_ok(&p.name) {
                return Err(format!(
                    "pods[{i}].name {:?} must be 1-64 characters without control characters",
                    p.name
                ));
            }
            if !pod_id_ok(&p.id) {
                return Err(format!(
                    "pods[{i}].id {:?} must be 1-32 characters of letters, digits and '-'",
                    p.id
                ));
            }
            let url_ok = url::Url::parse(&p.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !url_ok {
                return Err(format!(
                    "pods[{i}].url {:?} (pod {}) must be the http(s) URL of that pod's API host, e.g. https://api-eu-1.example.com",
                    p.url, p.id
                ));
            }
            if self.pods[..i].iter().any(|q| q.id == p.id) {
                return Err(format!("pods lists pod {:?} twice; keep one entry", p.id));
            }
            if p.id == self.pod_id && p.url.trim_end_matches('/') != self.issuer() {
                return Err(format!(
                    "pods lists this pod ({}) at {:?} but pod.public_url is {:?}; make them the same",
                    p.id,
                    p.url,
                    self.issuer()
                ));
            }
        }
        if self.sessions.idle_timeout < Duration::from_secs(60) {
            return Err("sessions.idle_timeout must be at least 60s".into());
        }
        if self.sessions.max_per_org == 0 {
            return Err("sessions.max_per_org must be at least 1".into());
        }
        if self.tokens.access_ttl < Duration::from_secs(60) {
            return Err("tokens.access_ttl must be at least 60s".into());
        }
        if self.tokens.reissue_after >= self.tokens.access_ttl {
            return Err(format!(
                "tokens.reissue_after ({}s) must be shorter than tokens.access_ttl ({}s)",
                self.tokens.reissue_after.as_secs(),
                self.tokens.access_ttl.as_secs()
            ));
        }
        let l = &self.limits;
        if l.source_failures < 2 || l.source_period.is_zero() {
            return Err(
                "limits.source_failures must be at least 2 and limits.source_period above zero"
                    .into(),
            );
        }
        if l.lockout_after == 0 || l.lockout_base.is_zero() || l.lockout_max < l.lockout_base {
            return Err(
                "limits.lockout_after and limits.lockout_base must be above zero, and limits.lockout_max at least limits.lockout_base"
                    .into(),
            );
        }
        if self.audit.failure_window.is_zero() {
            return Err("audit.failure_window must be longer than 0s, e.g. \"1h\"".into());
        }
        if self.audit.retention < Duration::from_secs(24 * 3600) {
            return Err("audit.retention must be at least 1d, e.g. \"400d\"".into());
        }
        if self.console.idle_timeout < Duration::from_secs(60) {
            return Err("console.idle_timeout must be at least 1m, e.g. \"30m\"".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_from_the_threshold_and_stops_at_the_cap() {
        let l = LimitSettings::default();
        assert_eq!(l.lockout(0), None);
        assert_eq!(l.lockout(4), None);
        assert_eq!(l.lockout(5), Some(Duration::from_secs(1)));
        assert_eq!(l.lockout(6), Some(Duration::from_secs(2)));
        assert_eq!(l.lockout(9), Some(Duration::from_secs(16)));
        assert_eq!(l.lockout(15), Some(Duration::from_secs(900)));
        assert_eq!(l.lockout(u32::MAX), Some(Duration::from_secs(900)));
    }
}
