//! PKCE (RFC 7636), S256 only (RFC 9700 §2.1.1): the challenge at the authorization
//! endpoint, the verifier at the token endpoint.

use grantry_core::oauth::pkce::{check_challenge, check_verifier, pkce_matches};
use grantry_core::oauth::ErrorCode;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[test]
fn the_rfc7636_example_matches() {
    assert!(pkce_matches(VERIFIER, CHALLENGE));
    assert!(!pkce_matches(&VERIFIER.replace('d', "e"), CHALLENGE));
    assert!(!pkce_matches(CHALLENGE, CHALLENGE));
}

/// (challenge, method, public client) -> the accepted challenge, or how the refusal starts.
type ChallengeCase<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    bool,
    Result<Option<&'a str>, &'a str>,
);

#[test]
fn challenges_at_the_authorization_endpoint() {
    let short = "a".repeat(42);
    let long = "a".repeat(129);
    let cases: [ChallengeCase; 10] = [
        (None, None, false, Ok(None)),
        (None, None, true, Err("PKCE is required for this client")),
        (
            None,
            Some("S256"),
            false,
            Err("code_challenge_method without"),
        ),
        (
            Some(CHALLENGE),
            None,
            false,
            Err("only code_challenge_method=S256"),
        ),
        (
            Some(CHALLENGE),
            Some("plain"),
            true,
            Err("only code_challenge_method=S256"),
        ),
        (
            Some(CHALLENGE),
            Some("s256"),
            false,
            Err("code_challenge_method s256 is not supported"),
        ),
        (
            Some(&short),
            Some("S256"),
            false,
            Err("code_challenge must be 43-128"),
        ),
        (
            Some(&long),
            Some("S256"),
            false,
            Err("code_challenge must be 43-128"),
        ),
        (
            Some("a b c d e f g h i j k l m n o p q r s t u v w"),
            Some("S256"),
            false,
            Err("code_challenge must be"),
        ),
        (Some(CHALLENGE), Some("S256"), true, Ok(Some(CHALLENGE))),
    ];
    for (challenge, method, public, want) in cases {
        let got = check_challenge(challenge, method, public);
        match (&got, want) {
            (Ok(c), Ok(w)) => assert_eq!(c.as_deref(), w),
            (Err(e), Err(w)) => assert!(e.starts_with(w), "{challenge:?} {method:?}: {e}"),
            _ => panic!("{challenge:?} {method:?} {public}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn verifiers_at_the_token_endpoint() {
    let malformed = "a".repeat(42);
    let wrong = "b".repeat(43);
    let cases: [(Option<&str>, Option<&str>, Option<ErrorCode>); 6] = [
        (None, None, None),
        (Some(CHALLENGE), Some(VERIFIER), None),
        (Some(CHALLENGE), Some(&wrong), Some(ErrorCode::InvalidGrant)),
        (
            Some(CHALLENGE),
            Some(&malformed),
            Some(ErrorCode::InvalidRequest),
        ),
        (Some(CHALLENGE), None, Some(ErrorCode::InvalidGrant)),
        (None, Some(VERIFIER), Some(ErrorCode::InvalidGrant)),
    ];
    for (challenge, verifier, want) in cases {
        let got = check_verifier(challenge, verifier).err().map(|e| e.code);
        assert_eq!(got, want, "challenge {challenge:?}, verifier {verifier:?}");
    }
}
