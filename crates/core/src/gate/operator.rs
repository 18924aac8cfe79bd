//! The platform operator's credential (docs/architecture.md, the admin API): a token whose
//! SHA-256 digest is configured on the server (`admin.operator_token_sha256`). It opens the
//! admin API's cross-org calls only (creating organizations), never an org's data or
//! configuration, and guessing at it is limited like guessing at any secret.

use super::BearerError;
use crate::credential::Digest;
use crate::limits::{Attempt, Door, Subject};

/// Checks `authorization` (`Bearer <operator token>`) against the configured digest.
pub async fn operator(
    expected: Option<&Digest>,
    attempt: Attempt<'_>,
    authorization: Option<&str>,
) -> Result<(), BearerError> {
    let Some(expected) = expected else {
        return Err(BearerError::invalid_token(
            "this server has no operator token: set admin.operator_token_sha256 (make one with `grantry operator-token`)",
        ));
    };
    let Some(header) = authorization else {
        return Err(BearerError::missing(
            "creating organizations needs the operator token: send Authorization: Bearer <operator token>",
        ));
    };
    let (scheme, value) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::invalid_token(
            "send the operator token as Authorization: Bearer <operator token>",
        ));
    }
    let subject = Subject::operator();
    attempt.admit(Door::ApiKey, &subject)?;
    if Digest::of(value.trim()).matches(expected) {
        attempt.succeeded(Door::ApiKey, &subject).await?;
        Ok(())
    } else {
        attempt.failed(Door::ApiKey, Some(&subject)).await?;
        Err(BearerError::invalid_token("the operator token is wrong"))
    }
}
