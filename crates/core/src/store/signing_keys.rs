//! The RS256 keys that sign JWT access tokens (RFC 9068).

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;

/// A signing key as stored. `private_der` is PKCS #1 DER and never leaves the server.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub private_der: Vec<u8>,
    /// Public modulus and exponent, base64url (JWK `n`, `e`).
    pub n: String,
    pub e: String,
    pub created_at: Timestamp,
    /// When the key starts signing; it is published from `created_at` on.
    pub active_from: Timestamp,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("active_from", &self.active_from)
            .finish_non_exhaustive()
    }
}

/// JWT signing keys.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every JWT signing key, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// `Conflict("signing key")` if a key with that `kid` exists.
    async fn add_signing_key(&self, key: &SigningKey) -> Result<()>;
}
