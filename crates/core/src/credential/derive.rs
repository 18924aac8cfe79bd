//! Credentials derived from others with HMAC-SHA256, so that the same answer can be given
//! again while the database holds only digests (docs/architecture.md, token rules).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Digest, Kind, Minted};

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes keys of any length: this cannot fail"
    )]
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn minted(kind: Kind, pod: &str, mac: [u8; 32]) -> Minted {
    let value = format!("{}_{}_{}", kind.prefix(), pod, URL_SAFE_NO_PAD.encode(mac));
    Minted {
        digest: Digest::of(&value),
        value: value.into(),
    }
}

/// The access token issued under an account access, derived from its refresh token:
/// `gat_<pod>_` + base64url(HMAC-SHA256(key = refresh token, message = nonce)).
///
/// Deriving it lets the token endpoint hand back the *same* access token inside the re-issue
/// window while storing only digests: the value can be recomputed only by whoever
/// presents the refresh token, never from the database.
pub fn derive_access_token(pod: &str, refresh_token: &str, nonce: &[u8]) -> Minted {
    let mac = hmac_sha256(refresh_token.as_bytes(), &[nonce]);
    minted(Kind::AccessToken, pod, mac)
}

/// The successor of a refresh token under rotation, derived from it:
/// `grt_<pod>_` + base64url(HMAC-SHA256(key = old token, message = "rotate" || nonce)), so that
/// a client that lost the response and presents the old token again (inside the grace) gets
/// the same answer, while the database holds only digests.
pub fn derive_refresh_token(pod: &str, parent: &str, nonce: &[u8]) -> Minted {
    let mac = hmac_sha256(parent.as_bytes(), &[b"rotate", nonce]);
    minted(Kind::RefreshToken, pod, mac)
}

/// How many bytes a [`DeriveKey`] has.
pub const DERIVE_KEY_LEN: usize = 32;

/// The server's key for the secrets it must be able to compute again: OAuth 1.0a signatures
/// are keyed with the consumer's and the token's shared secrets (RFC 5849 §3.4.2), which a
/// digest cannot give back (docs/architecture.md, OAuth 1.0a). It is kept outside the
/// database, so a copy of the database alone reveals none of them.
#[derive(Clone)]
pub struct DeriveKey([u8; DERIVE_KEY_LEN]);

impl std::fmt::Debug for DeriveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeriveKey(..)")
    }
}

impl DeriveKey {
    pub fn new(bytes: [u8; DERIVE_KEY_LEN]) -> Self {
        DeriveKey(bytes)
    }

    /// A new random key.
    pub fn random() -> Self {
        DeriveKey(super::random_bytes())
    }

    /// A client secret derived from this key and `nonce`:
    /// `gcs_<pod>_` + base64url(HMAC-SHA256(key, "client secret" || nonce)). It is as random as
    /// a minted one to anyone without the key, and is stored as its digest like any other.
    pub fn client_secret(&self, pod: &str, nonce: &[u8]) -> Minted {
        minted(
            Kind::ClientSecret,
            pod,
            hmac_sha256(&self.0, &[b"client secret", nonce]),
        )
    }

    /// The shared secret of OAuth 1.0a temporary or token credentials (RFC 5849 §2.1, §2.3),
    /// derived from the token itself: base64url(HMAC-SHA256(key, "oauth1 token secret" ||
    /// token)). Nothing about it is stored; whoever presents the token and signs with it
    /// proves they were given both.
    pub fn token_secret(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(
            &self.0,
            &[b"oauth1 token secret", token.as_bytes()],
        ))
    }
}
