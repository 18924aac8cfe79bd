//! The gate in front of the protected APIs: a request's `Authorization` header resolves to
//! one [`Principal`] (docs/architecture.md, ways to authenticate), or to an RFC 6750 [`BearerError`].
//!
//! The accepted forms are an OAuth 2.0 access token (opaque or JWT), an API secret key used
//! directly as `Bearer base64(<key id>:<secret key>)`, and HTTP Basic with an API user's
//! username and secret key. A UI user's password never opens an API.

mod access_token;
mod error;
mod operator;
mod principal;

use secrecy::SecretString;

pub use error::{BearerError, BearerErrorCode};
pub use operator::operator;
pub use principal::{AuthMethod, Principal};

use crate::apikeys::{self, KeyOwner, KeyRefusal};
use crate::clock::Timestamp;
use crate::credential::{self, Kind};
use crate::limits::Attempt;
use crate::oauth1::request::{TokenUse, VerifiedToken};
use crate::oauth1::{self, OAuth1Error, Problem, SignedRequest};
use crate::settings::Settings;
use crate::store::Store;

const BASIC_HELP: &str = "the username or secret key is wrong: HTTP Basic takes an API user's username and one of its secret keys; \
    a UI user's password never opens an API: use an access token from an application \
    (POST /oauth/token) or an API user's secret key";

/// Resolves the `Authorization` header of a protected request (docs/architecture.md, ways to authenticate) at `now`.
pub async fn authenticate(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    authorization: Option<&str>,
) -> Result<Principal, BearerError> {
    let Some(header) = authorization else {
        return Err(BearerError::missing(
            "this API needs a credential: send Authorization: Bearer <access token or API key>",
        ));
    };
    let (scheme, value) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        return basic(store, now, settings, attempt, value).await;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::invalid_token(format!(
            "the {scheme} scheme is not accepted here: send Authorization: Bearer <access token or API key>"
        )));
    }
    bearer(store, now, settings, attempt, value).await
}

/// A request signed with OAuth 1.0a token credentials (RFC 5849 §3; docs/architecture.md,
/// OAuth 1.0a), at `now`: the token's user, with the grants of its account access.
pub async fn authenticate_signed(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    req: &SignedRequest<'_>,
) -> Result<Principal, BearerError> {
    let verified = oauth1::request::verify(store, now, settings, attempt, req, TokenUse::Access)
        .await
        .map_err(|e| signed_refusal(e).of_oauth1())?;
    let (app, VerifiedToken::Access(rec)) = (verified.0.app, verified.0.token) else {
        return Err(BearerError::invalid_token("the token is unknown").of_oauth1());
    };
    let grants = rec.grants();
    let mut p = Principal::of_user(rec.user, grants, AuthMethod::OAuth1);
    p.app_id = Some(app.id);
    p.client_id = Some(app.client_id);
    Ok(p)
}

/// An OAuth 1.0a refusal in RFC 6750 terms, which every API renders in its own format.
fn signed_refusal(e: OAuth1Error) -> BearerError {
    let description = format!("{}: {}", e.problem.name(), e.description);
    match e.problem {
        Problem::Throttled(t) => t.into(),
        Problem::Server(cause) => {
            let mut b = BearerError::from(crate::store::StoreError::Backend(cause));
            b.description = "the server could not check the request; try again".into();
            b
        }
        Problem::Unavailable(cause) => {
            BearerError::from(crate::store::StoreError::Unavailable(cause))
        }
        p if p.is_bad_request() => BearerError::invalid_request(description),
        _ => BearerError::invalid_token(description),
    }
}

/// `Basic base64(<API user's username>:<secret key>)` (desktop and mobile tools).
async fn basic(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    value: &str,
) -> Result<Principal, BearerError> {
    let (username, secret) = apikeys::parse_basic(value)
        .ok_or_else(|| BearerError::invalid_token(BASIC_HELP).of_basic())?;
    let owner = KeyOwner::Username(&username);
    key_principal(
        store,
        now,
        settings,
        attempt,
        owner,
        &secret,
        AuthMethod::Basic,
    )
    .await
    .map_err(BearerError::of_basic)
}

/// `Bearer <value>`: told apart by the credential's shape before any lookup.
async fn bearer(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    value: &str,
) -> Result<Principal, BearerError> {
    if value.is_empty() {
        return Err(BearerError::invalid_token("the Bearer credential is empty"));
    }
    if let Some(pod) = credential::foreign_pod(settings, value) {
        return Err(BearerError::invalid_token(format!(
            "this credential belongs to {pod}; call that pod's API host"
        )));
    }
    match credential::shape(value) {
        Some(shape) if shape.kind == Kind::RefreshToken => Err(BearerError::invalid_token(
            "this is a refresh token: trade it for an access token at POST /oauth/token",
        )),
        Some(shape) if shape.kind == Kind::AccessToken => {
            access_token::principal(store, now, settings, value).await
        }
        None if credential::looks_like_jwt(value) => {
            access_token::principal(store, now, settings, value).await
        }
        _ => match apikeys::parse_bearer(value) {
            Some((key_id, secret)) => {
                let owner = KeyOwner::KeyId(&key_id);
                key_principal(
                    store,
                    now,
                    settings,
                    attempt,
                    owner,
                    &secret,
                    AuthMethod::ApiKey,
                )
                .await
            }
            None => Err(BearerError::invalid_token("the access token is unknown")),
        },
    }
}

/// The API user of a secret key, with the user's grants.
async fn key_principal(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    owner: KeyOwner<'_>,
    secret: &SecretString,
    method: AuthMethod,
) -> Result<Principal, BearerError> {
    match apikeys::check_key(store, now, settings, attempt, owner, secret).await? {
        Ok((_, user)) => {
            let grants = user.effective_grants();
            Ok(Principal::of_user(user, grants, method))
        }
        Err(KeyRefusal::Unknown) if method == AuthMethod::Basic => {
            Err(BearerError::invalid_token(BASIC_HELP))
        }
        Err(KeyRefusal::Throttled(t)) => Err(t.into()),
        Err(r) => Err(BearerError::invalid_token(r.describe())),
    }
}
