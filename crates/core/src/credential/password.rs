//! Human passwords: argon2id (PHC string format), and generated one-time passwords.
//! Machine-generated credentials never come here: they are SHA-256 digests.

use std::cell::RefCell;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

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

/// The most argon2 memory a stored hash may ask a verification for (grantry's own hashes
/// ask for argon2's default, 19 MiB).
const MAX_BLOCKS: usize = 256 * 1024;

thread_local! {
    /// argon2's working memory, kept by each thread that verifies passwords: the password
    /// threads reuse one buffer each instead of allocating (and the allocator keeping) 19 MiB
    /// per verification (docs/architecture.md, limits).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Verifies a password against a stored PHC string: the hash recomputed with its
/// algorithm, version, parameters and salt, in this thread's reused argon2 memory, then
/// compared in constant time.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (h.hash, h.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = match h.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&h) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    let hashed = BLOCKS.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
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

    #[test]
    fn verification_agrees_with_argon2s_own_for_other_parameters_and_broken_hashes() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
        // Smaller and larger memory than the default, argon2i and argon2d, version 0x10: the
        // reused buffer is resized or sliced, never read past what a hash asked for.
        let kinds = [
            (
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                4096,
                3,
                1,
            ),
            (
                argon2::Algorithm::Argon2i,
                argon2::Version::V0x13,
                8192,
                2,
                2,
            ),
            (
                argon2::Algorithm::Argon2d,
                argon2::Version::V0x10,
                30_000,
                1,
                1,
            ),
            (
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                19_456,
                2,
                1,
            ),
        ];
        for (alg, ver, m, t, p) in kinds {
            let params = argon2::Params::new(m, t, p, None).unwrap();
            let a = argon2::Argon2::new(alg, ver, params);
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            let phc = a
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&phc).unwrap();
            for pw in ["correct horse", "correct hors", "", "correct horse "] {
                let theirs = argon2::Argon2::default()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok();
                assert_eq!(super::verify(pw, &phc), theirs, "{phc} {pw:?}");
            }
        }
        let good = super::hash("correct horse").unwrap();
        for broken in [
            "",
            "$argon2id$",
            "not a hash",
            &good.replace("$argon2id$", "$scrypt$"),
            &good[..good.len() - 4],
        ] {
            assert!(!super::verify("correct horse", broken), "{broken}");
        }
        let huge = "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(
            !super::verify("x", huge),
            "a stored hash asking for 4 GiB is refused, not run"
        );
    }
}
