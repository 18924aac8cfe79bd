//! Machine-generated credentials: minted from the OS random source, shown once, stored as a
//! SHA-256 [`Digest`], compared in constant time.
//!
//! Every credential reads `<prefix>_<pod>_<secret>` where `<secret>` is 32 random bytes in
//! unpadded base64url, so a leaked string says what it is and which pod it belongs to.
//! Machine secrets carry 256 bits of entropy, so a fast digest is enough; argon2id is kept for
//! human passwords (see [`password`]).

mod derive;
pub mod password;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

pub use derive::{
    derive_access_token, derive_refresh_token, hmac_sha256, DeriveKey, DERIVE_KEY_LEN,
};

/// The kinds of credential grantry mints, each with its own prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ClientSecret,
    RefreshToken,
    AccessToken,
    ApiSecretKey,
    AuthorizationCode,
    /// A signed-in console or consent session.
    Session,
    /// OAuth 1.0a temporary credentials (RFC 5849 §2.1).
    RequestToken,
    /// OAuth 1.0a token credentials (RFC 5849 §2.3).
    OAuth1Token,
    /// An XML API `Login` session.
    XmlSession,
    /// The platform operator's token for the admin API's cross-org calls.
    OperatorToken,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::ClientSecret => "gcs",
            Kind::RefreshToken => "grt",
            Kind::AccessToken => "gat",
            Kind::ApiSecretKey => "gsk",
            Kind::AuthorizationCode => "gac",
            Kind::Session => "gss",
            Kind::RequestToken => "grq",
            Kind::OAuth1Token => "goa",
            Kind::XmlSession => "gxs",
            Kind::OperatorToken => "gop",
        }
    }

    fn from_prefix(p: &str) -> Option<Kind> {
        [
            Kind::ClientSecret,
            Kind::RefreshToken,
            Kind::AccessToken,
            Kind::ApiSecretKey,
            Kind::AuthorizationCode,
            Kind::Session,
            Kind::RequestToken,
            Kind::OAuth1Token,
            Kind::XmlSession,
            Kind::OperatorToken,
        ]
        .into_iter()
        .find(|k| k.prefix() == p)
    }
}

/// SHA-256 of a credential: the only form in which credentials are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(secret: &str) -> Digest {
        Digest(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_slice(b: &[u8]) -> Option<Digest> {
        b.try_into().ok().map(Digest)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &Digest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(..)")
    }
}

/// A freshly minted credential: the value to show once, and the digest to store.
pub struct Minted {
    pub value: SecretString,
    pub digest: Digest,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minted(..)")
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Mints a new random credential of `kind` for `pod`.
pub fn mint(kind: Kind, pod: &str) -> Minted {
    let value = format!(
        "{}_{}_{}",
        kind.prefix(),
        pod,
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    );
    Minted {
        digest: Digest::of(&value),
        value: value.into(),
    }
}

/// A random 128-bit nonce.
pub fn nonce() -> [u8; 16] {
    random_bytes::<16>()
}

/// A random UUID v4 string (client ids, API Key IDs).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What the shape of a presented credential says about it, before any lookup.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape<'a> {
    pub kind: Kind,
    pub pod: &'a str,
}

/// Reads the kind and pod from a credential string; `None` if it is not one of grantry's.
pub fn shape(value: &str) -> Option<Shape<'_>> {
    let (prefix, rest) = value.split_once('_')?;
    let kind = Kind::from_prefix(prefix)?;
    let (pod, secret) = rest.split_once('_')?;
    let b64url = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    if pod.is_empty() || secret.is_empty() || !secret.bytes().all(b64url) {
        return None;
    }
    Some(Shape { kind, pod })
}

/// The pod a presented credential belongs to when it carries another pod's id: every door
/// refuses it naming that pod (docs/architecture.md, Pods).
pub fn foreign_pod<'a>(
    settings: &'a crate::settings::Settings,
    value: &'a str,
) -> Option<crate::settings::ForeignPod<'a>> {
    shape(value).and_then(|s| settings.foreign_pod(s.pod))
}

/// Whether a bearer value looks like a JWS compact serialization (a JWT access token).
pub fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3 && value.starts_with("ey")
}

/// `base64(<key id>:<secret>)`, the ready-to-use bearer value of an API secret key.
pub fn api_key_bearer(key_id: &str, secret: &SecretString) -> String {
    STANDARD.encode(format!("{key_id}:{}", secret.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_credentials_carry_kind_and_pod() {
        let m = mint(Kind::RefreshToken, "us-1");
        let s = shape(m.value.expose_secret()).unwrap();
        assert_eq!(s.kind, Kind::RefreshToken);
        assert_eq!(s.pod, "us-1");
        assert!(Digest::of(m.value.expose_secret()).matches(&m.digest));
        assert_ne!(mint(Kind::RefreshToken, "us-1").digest, m.digest);
    }

    #[test]
    fn derived_access_token_is_stable_per_nonce() {
        let n = nonce();
        let a = derive_access_token("p", "grt_p_x", &n);
        let b = derive_access_token("p", "grt_p_x", &n);
        let c = derive_access_token("p", "grt_p_y", &n);
        assert_eq!(a.value.expose_secret(), b.value.expose_secret());
        assert_ne!(a.value.expose_secret(), c.value.expose_secret());
        assert!(shape(a.value.expose_secret()).is_some());
    }

    #[test]
    fn foreign_strings_have_no_shape() {
        assert!(shape("hello").is_none());
        assert!(shape("gat_p_").is_none());
        assert!(shape("gat_p_a b").is_none());
        assert!(shape("xyz_p_0123456789012345678901234567890123456789012").is_none());
    }
}
