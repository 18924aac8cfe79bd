//! Human passwords: argon2id (PHC string format), and generated one-time passwords.
//! Machine-generated credentials never come here: they are SHA-256 digests.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

/// Hashing a password failed (argon2 refused its parameters or input).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Hashes a human password with argon2id and a random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Verifies a password against a stored PHC string (constant time inside argon2).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Where passwords are verified: argon2id takes tens of milliseconds of one core, so the
/// server runs it on a bounded pool of threads of its own rather than on the workers that
/// serve every other request (docs/architecture.md, limits).
#[async_trait::async_trait]
pub trait Verifier: Send + Sync {
    /// [`verify`], run where this verifier runs it.
    async fn verify(&self, password: SecretString, phc: String) -> bool;
}

/// Verifies on the calling task: for the command line and tests.
pub struct Inline;

#[async_trait::async_trait]
impl Verifier for Inline {
    async fn verify(&self, password: SecretString, phc: String) -> bool {
        verify(password.expose_secret(), &phc)
    }
}

/// A random 20-character password from an unambiguous alphabet (about 115 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_then_verify() {
        let p = super::generate();
        let h = super::hash(&p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify(&p, &h));
        assert!(!super::verify("wrong", &h));
    }
}
