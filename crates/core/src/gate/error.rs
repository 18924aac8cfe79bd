//! Why a protected request was refused, in RFC 6750 §3 terms. The HTTP status and the
//! `WWW-Authenticate` challenge are chosen from these in `grantry-server`.

use crate::limits::Throttled;
use crate::permissions::Grant;
use crate::store::StoreError;

/// RFC 6750 §3.1 error codes; `None` in [`BearerError::code`] when the request carried no
/// credential at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerErrorCode {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    /// Too many failed attempts from the source or for the key (docs/architecture.md,
    /// limits): answered 429 with `Retry-After`.
    TooManyAttempts,
    /// A storage failure; never a client's fault.
    ServerError,
    /// The database is unavailable for now: answered 503 with `Retry-After`, and the
    /// credential is neither accepted nor refused.
    TemporarilyUnavailable,
}

impl BearerErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            BearerErrorCode::InvalidRequest => "invalid_request",
            BearerErrorCode::InvalidToken => "invalid_token",
            BearerErrorCode::InsufficientScope => "insufficient_scope",
            BearerErrorCode::TooManyAttempts => "too_many_attempts",
            BearerErrorCode::ServerError => "server_error",
            BearerErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Why a protected request was refused (RFC 6750 §3). `cause` is never serialized.
#[derive(Clone, Debug)]
pub struct BearerError {
    /// `None`: no credential was sent (RFC 6750 §3.1: no error code in the challenge).
    pub code: Option<BearerErrorCode>,
    pub description: String,
    /// For `insufficient_scope`: the grant that was missing.
    pub scope: Option<Grant>,
    /// The caller authenticated with HTTP Basic: a refusal also challenges for Basic
    /// (RFC 7617 §2), so a client sees the scheme it used is the one that failed.
    pub basic: bool,
    /// The request was signed with OAuth 1.0a: a refusal challenges with the OAuth scheme
    /// (RFC 5849 §3.2) instead.
    pub oauth1: bool,
    /// Seconds to wait, for [`BearerErrorCode::TooManyAttempts`] (`Retry-After`).
    pub retry_after: Option<u64>,
    pub cause: Option<String>,
}

impl BearerError {
    fn with_code(code: Option<BearerErrorCode>, d: impl Into<String>) -> Self {
        BearerError {
            code,
            description: d.into(),
            scope: None,
            basic: false,
            oauth1: false,
            retry_after: None,
            cause: None,
        }
    }

    /// The same refusal, of a request that authenticated with HTTP Basic.
    pub fn of_basic(self) -> Self {
        BearerError {
            basic: true,
            ..self
        }
    }

    /// The same refusal, of a request signed with OAuth 1.0a.
    pub fn of_oauth1(self) -> Self {
        BearerError {
            oauth1: true,
            ..self
        }
    }

    /// No credential was sent.
    pub fn missing(d: impl Into<String>) -> Self {
        Self::with_code(None, d)
    }

    /// The credential is unknown, expired, revoked or otherwise not good.
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::with_code(Some(BearerErrorCode::InvalidToken), d)
    }

    /// The request is malformed (RFC 6750 §3.1 `invalid_request`).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::with_code(Some(BearerErrorCode::InvalidRequest), d)
    }

    /// The credential lacks the grant `g`.
    pub fn insufficient_scope(g: Grant) -> Self {
        BearerError {
            scope: Some(g),
            ..Self::with_code(
                Some(BearerErrorCode::InsufficientScope),
                format!("this call needs the {g} grant, which the credential does not carry"),
            )
        }
    }
}

impl From<Throttled> for BearerError {
    fn from(t: Throttled) -> Self {
        BearerError {
            retry_after: Some(t.retry_after_secs()),
            ..Self::with_code(Some(BearerErrorCode::TooManyAttempts), t.describe())
        }
    }
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return BearerError {
                cause: Some(e.to_string()),
                retry_after: Some(crate::store::RETRY_AFTER_SECS),
                ..Self::with_code(
                    Some(BearerErrorCode::TemporarilyUnavailable),
                    "the server cannot reach its database just now, so it could not check the credential; try again shortly",
                )
            };
        }
        BearerError {
            cause: Some(e.to_string()),
            ..Self::with_code(
                Some(BearerErrorCode::ServerError),
                "the server could not check the credential; try again",
            )
        }
    }
}
