//! Why an OAuth 1.0a request was refused (RFC 5849 §3.2), with the problem names of the
//! OAuth Problem Reporting extension so that a client can tell the cases apart.

use crate::limits::Throttled;
use crate::store::StoreError;

/// What was wrong with a signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A required protocol parameter is missing (400).
    ParameterAbsent,
    /// A parameter is duplicated, unsupported or malformed (400).
    ParameterRejected,
    /// `oauth_version` is not `1.0` (400).
    VersionRejected,
    /// The signature method is unknown, or PLAINTEXT without TLS (400).
    SignatureMethodRejected,
    /// `oauth_timestamp` is outside the window (401).
    TimestampRefused,
    /// The nonce was used before with this timestamp (401).
    NonceUsed,
    /// No application has this consumer key (401).
    ConsumerKeyUnknown,
    /// The application cannot use OAuth 1.0a (401).
    ConsumerKeyRejected,
    /// The token is unknown, expired, spent or of another consumer (401).
    TokenRejected,
    /// The token was revoked (its account access was deleted) (401).
    TokenRevoked,
    /// The signature does not match (401).
    SignatureInvalid,
    /// The verifier does not match (401).
    VerifierInvalid,
    /// Too many failures for this consumer or from this source (429).
    Throttled(Throttled),
    /// The store failed (500; never the client's fault).
    Server(String),
    /// The database is unavailable for now (503 with `Retry-After`).
    Unavailable(String),
}

impl Problem {
    /// The name of the problem (`oauth_problem`).
    pub fn name(&self) -> &'static str {
        match self {
            Problem::ParameterAbsent => "parameter_absent",
            Problem::ParameterRejected => "parameter_rejected",
            Problem::VersionRejected => "version_rejected",
            Problem::SignatureMethodRejected => "signature_method_rejected",
            Problem::TimestampRefused => "timestamp_refused",
            Problem::NonceUsed => "nonce_used",
            Problem::ConsumerKeyUnknown => "consumer_key_unknown",
            Problem::ConsumerKeyRejected => "consumer_key_rejected",
            Problem::TokenRejected => "token_rejected",
            Problem::TokenRevoked => "token_revoked",
            Problem::SignatureInvalid => "signature_invalid",
            Problem::VerifierInvalid => "verifier_invalid",
            Problem::Throttled(_) => "too_many_attempts",
            Problem::Server(_) => "server_error",
            Problem::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// RFC 5849 §3.2: a malformed request is 400 (Bad Request), a bad credential 401.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Problem::ParameterAbsent
                | Problem::ParameterRejected
                | Problem::VersionRejected
                | Problem::SignatureMethodRejected
        )
    }
}

/// A refused OAuth 1.0a request: the problem and what the client is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth1Error {
    pub problem: Problem,
    pub description: String,
    /// For `signature_invalid`: the signature base string the server computed, which the
    /// client can compare with its own (it holds nothing secret).
    pub base_string: Option<String>,
}

impl OAuth1Error {
    pub fn new(problem: Problem, description: impl Into<String>) -> Self {
        OAuth1Error {
            problem,
            description: description.into(),
            base_string: None,
        }
    }
}

impl From<StoreError> for OAuth1Error {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return OAuth1Error::new(
                Problem::Unavailable(e.to_string()),
                "the server cannot reach its database just now; nothing was changed, try again shortly",
            );
        }
        OAuth1Error::new(
            Problem::Server(e.to_string()),
            "the server could not check the request; try again",
        )
    }
}

impl From<Throttled> for OAuth1Error {
    fn from(t: Throttled) -> Self {
        let d = t.describe();
        OAuth1Error::new(Problem::Throttled(t), d)
    }
}
