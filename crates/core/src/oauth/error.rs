//! The token endpoint family's errors (RFC 6749 §5.2): introspection and revocation answer
//! in the same form. The HTTP status is chosen from [`ErrorCode`] in `grantry-server`.

use crate::limits::Throttled;
use crate::store::StoreError;

/// RFC 6749 §5.2 error codes (plus `slow_down`, RFC 8628 §3.5, for the `reject` re-issue
/// policy and for throttled client authentication).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    SlowDown,
    ServerError,
    /// The database is unavailable for now (RFC 6749 §4.1.2.1's `temporarily_unavailable`,
    /// answered 503 with `Retry-After`).
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A token-endpoint error (RFC 6749 §5.2). `cause` is for logs and never serialized.
#[derive(Clone, Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// The client tried HTTP Basic, so a refusal of the client carries a `Basic` challenge
    /// (RFC 6749 §5.2).
    pub basic_challenge: bool,
    /// Seconds to wait, for `slow_down` (`Retry-After`).
    pub retry_after: Option<u64>,
    pub cause: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            cause: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub(crate) fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    /// `invalid_client`, challenging for Basic when the client used it.
    pub(crate) fn invalid_client(d: impl Into<String>, basic: bool) -> Self {
        OAuthError {
            basic_challenge: basic,
            ..Self::new(ErrorCode::InvalidClient, d)
        }
    }

    pub fn server(cause: impl std::fmt::Display) -> Self {
        OAuthError {
            cause: Some(cause.to_string()),
            ..Self::new(
                ErrorCode::ServerError,
                "the server could not complete the request; try again",
            )
        }
    }
}

/// A throttled attempt (docs/architecture.md, limits): 429 `slow_down` with `Retry-After`.
impl From<Throttled> for OAuthError {
    fn from(t: Throttled) -> Self {
        OAuthError {
            retry_after: Some(t.retry_after_secs()),
            ..Self::new(ErrorCode::SlowDown, t.describe())
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return OAuthError {
                cause: Some(e.to_string()),
                retry_after: Some(crate::store::RETRY_AFTER_SECS),
                ..Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the server cannot reach its database just now; nothing was changed, try again shortly",
                )
            };
        }
        OAuthError::server(e)
    }
}
