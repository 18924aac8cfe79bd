//! Proof Key for Code Exchange (RFC 7636), S256 only (RFC 9700 §2.1.1): the challenge is
//! checked at the authorization endpoint, the verifier at the token endpoint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest as _, Sha256};

use super::OAuthError;
use crate::credential::Digest;

/// RFC 7636 §4.1/§4.2: 43–128 characters of the unreserved set.
fn well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The authorization request's challenge (RFC 7636 §4.3): S256 only, and required of
/// public clients. `Err` is the `invalid_request` description.
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    public_client: bool,
) -> Result<Option<String>, String> {
    match (challenge, method) {
        (None, Some(_)) => Err("code_challenge_method without code_challenge".into()),
        (None, None) if public_client => Err(
            "PKCE is required for this client: send code_challenge with code_challenge_method=S256"
                .into(),
        ),
        (None, None) => Ok(None),
        (Some(_), None | Some("plain")) => {
            Err("only code_challenge_method=S256 is accepted (plain is refused)".into())
        }
        (Some(c), Some("S256")) if well_formed(c) => Ok(Some(c.to_string())),
        (Some(_), Some("S256")) => {
            Err("code_challenge must be 43-128 characters of [A-Za-z0-9-._~]".into())
        }
        (Some(_), Some(m)) => Err(format!(
            "code_challenge_method {m} is not supported; use S256"
        )),
    }
}

/// The token request's verifier against the code's challenge (RFC 7636 §4.5, §4.6).
pub fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(_), Some(v)) if !well_formed(v) => Err(OAuthError::invalid_request(
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
        )),
        (Some(c), Some(v)) if !pkce_matches(v, c) => Err(OAuthError::invalid_grant(
            "the code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "code_verifier is required (PKCE)",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "a code_verifier was sent but the authorization request had no code_challenge",
        )),
        _ => Ok(()),
    }
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`, compared in
/// constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Digest::of(&computed).matches(&Digest::of(challenge))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_example_of_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "wrong",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
