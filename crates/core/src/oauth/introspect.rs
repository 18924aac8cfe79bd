//! Token introspection (RFC 7662). Introspection and revocation are for authenticated
//! clients: an application, which sees the tokens of its own organization (any other token
//! is `{"active": false}`), or an API user that obtained access tokens with its Key ID and
//! secret key (`client_credentials`), which sees only those.

use serde_json::{json, Value};

use super::client_auth::{verify_client, ClientAuth};
use super::{OAuthError, Params};
use crate::apikeys::{self, KeyOwner, KeyRefusal};
use crate::clock::Timestamp;
use crate::credential::{self, Digest, Kind};
use crate::limits::Attempt;
use crate::model::{Application, OrgId, User};
use crate::settings::Settings;
use crate::store::{BearerRecord, RefreshTokenRecord, Store, TokenOwner};

/// Who asks to introspect or revoke.
#[derive(Clone, Debug)]
pub enum TokenClient {
    Application(Application),
    /// An API user, authenticated with its Key ID as `client_id` and a secret key as
    /// `client_secret`, as for the `client_credentials` grant.
    ApiUser(User),
}

impl TokenClient {
    pub fn org_id(&self) -> OrgId {
        match self {
            TokenClient::Application(a) => a.org_id,
            TokenClient::ApiUser(u) => u.org_id,
        }
    }

    /// Who it is in the audit log, and what it acts on.
    pub(crate) fn actor_and_target(&self) -> (String, String) {
        match self {
            TokenClient::Application(a) => {
                (a.client_id.clone(), format!("application:{}", a.client_id))
            }
            TokenClient::ApiUser(u) => (u.username.clone(), format!("user:{}", u.username)),
        }
    }

    /// The tokens it may revoke (RFC 7009 §2.1): those issued to it.
    pub fn owner(&self) -> TokenOwner {
        match self {
            TokenClient::Application(a) => TokenOwner::Application(a.id),
            TokenClient::ApiUser(u) => TokenOwner::ApiUser(u.id),
        }
    }
}

/// An introspection or revocation request: the authenticated client and the token.
pub struct TokenQuery {
    pub client: TokenClient,
    pub token: String,
}

/// Reads the request and authenticates the client. Introspection needs a confidential
/// client; revocation also accepts a public client naming itself (RFC 7009 §2.1).
pub async fn authenticate(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    request: (&Params, Option<&str>),
    allow_public: bool,
) -> Result<TokenQuery, OAuthError> {
    let (params, authorization) = request;
    let auth = ClientAuth::from_request(params, authorization)?;
    let client = match store.application_by_client_id(&auth.client_id).await? {
        Some(app) => TokenClient::Application(
            verify_client(store, now, settings, attempt, &auth, app).await?,
        ),
        None => TokenClient::ApiUser(api_user(store, now, settings, attempt, &auth).await?),
    };
    if matches!(&client, TokenClient::Application(a) if a.public && !allow_public) {
        return Err(OAuthError::invalid_client(
            "public clients cannot introspect tokens; use a confidential client",
            false,
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?
        .to_string();
    Ok(TokenQuery { client, token })
}

/// The API user whose Key ID is the `client_id`, with one of its secret keys as the secret.
async fn api_user(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    auth: &ClientAuth,
) -> Result<User, OAuthError> {
    let Some(secret) = &auth.secret else {
        return Err(auth.unknown());
    };
    let owner = KeyOwner::KeyId(&auth.client_id);
    match apikeys::check_key(store, now, settings, attempt, owner, secret).await? {
        Ok((_, user)) => Ok(user),
        Err(KeyRefusal::Unknown) => Err(auth.unknown()),
        Err(KeyRefusal::Throttled(t)) => Err(t.into()),
        Err(r) => Err(auth.refused(r.describe())),
    }
}

fn inactive() -> Value {
    json!({"active": false})
}

/// RFC 7662 §2.2: what the caller may know about a token at `now`.
pub async fn introspect(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    q: &TokenQuery,
) -> Result<Value, OAuthError> {
    // This pod vouches only for its own tokens (docs/architecture.md, Pods).
    if credential::foreign_pod(settings, &q.token).is_some() {
        return Ok(inactive());
    }
    let digest = Digest::of(&q.token);
    let is_refresh = credential::shape(&q.token).is_some_and(|s| s.kind == Kind::RefreshToken);
    if !is_refresh {
        if let Some(t) = store.access_token(&digest).await? {
            return Ok(access_token(&t, now, settings, &q.client));
        }
    }
    let TokenClient::Application(app) = &q.client else {
        return Ok(inactive());
    };
    match store.refresh_token(&digest).await? {
        Some(r) if r.access.org_id == app.org_id && r.rotated_at.is_none() => {
            refresh_token(store, &r, settings).await
        }
        _ => Ok(inactive()),
    }
}

/// Whether `caller` may see the access token `t`: an application sees its org's, an API user
/// only those it obtained with its secret keys.
fn visible(t: &BearerRecord, caller: &TokenClient) -> bool {
    match caller {
        TokenClient::Application(a) => t.user.org_id == a.org_id,
        TokenClient::ApiUser(u) => t.app.is_none() && t.user.id == u.id,
    }
}

/// An access token: active unless refused now or not the caller's to see.
fn access_token(
    t: &BearerRecord,
    now: Timestamp,
    settings: &Settings,
    caller: &TokenClient,
) -> Value {
    if t.refusal(now).is_some() || !visible(t, caller) {
        return inactive();
    }
    let client_id = match &t.app {
        Some(app) => app.client_id.clone(),
        None => t.user.key_id.clone().unwrap_or_default(),
    };
    json!({
        "active": true,
        "scope": t.grants().to_scope(),
        "client_id": client_id,
        "username": t.user.username,
        "token_type": "Bearer",
        "exp": t.expires_at.millis() / 1000,
        "iat": t.issued_at.millis() / 1000,
        "sub": t.user.username,
        "iss": settings.issuer(),
    })
}

/// A live refresh token of the caller's org that was not rotated away: active while its user
/// is enabled and its application exists, with the grants it would carry now.
async fn refresh_token(
    store: &dyn Store,
    r: &RefreshTokenRecord,
    settings: &Settings,
) -> Result<Value, OAuthError> {
    let Some(user) = store
        .user_by_id(r.access.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(inactive());
    };
    let Some(app) = store.application_by_client_id(&r.client_id).await? else {
        return Ok(inactive());
    };
    let grants = r
        .scopes
        .intersect(r.access.scopes)
        .intersect(app.scopes)
        .intersect(user.effective_grants());
    Ok(json!({
        "active": true,
        "scope": grants.to_scope(),
        "client_id": r.client_id,
        "username": r.username,
        "token_type": "refresh_token",
        "iat": r.created_at.millis() / 1000,
        "sub": r.username,
        "iss": settings.issuer(),
    }))
}
