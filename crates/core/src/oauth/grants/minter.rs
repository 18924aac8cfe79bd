//! The access tokens of one refresh token: derived from it (opaque) or signed JWTs whose
//! `jti` is derived from it (RFC 9068 applications). The same facts always give the same
//! token, so the re-issue window can hand a token back while only its digest is stored.

use crate::clock::Timestamp;
use crate::credential::{self, Minted};
use crate::model::{Application, TokenFormat, UserId};
use crate::oauth::jwt::{self, active_key, AccessClaims};
use crate::oauth::OAuthError;
use crate::permissions::GrantSet;
use crate::settings::Settings;
use crate::store::{NewAccessToken, SigningKey, SigningKeyStore};

pub(crate) struct Minter<'a> {
    keys: Vec<SigningKey>,
    settings: &'a Settings,
    app: &'a Application,
    refresh_token: &'a str,
    user: UserId,
}

impl<'a> Minter<'a> {
    /// A minter for `app`'s tokens from `refresh_token`. JWT applications sign with the
    /// keys the server made ready ahead (at start and on its schedule): no key is ever made
    /// inside a token request, so every key is published before it signs.
    pub(crate) async fn new(
        store: &dyn SigningKeyStore,
        now: Timestamp,
        settings: &'a Settings,
        app: &'a Application,
        refresh_token: &'a str,
        user: UserId,
    ) -> Result<Minter<'a>, OAuthError> {
        let keys = match app.token_format {
            TokenFormat::Jwt => {
                let keys = store.signing_keys().await?;
                if active_key(&keys, now).is_none() {
                    return Err(OAuthError::server(
                        "no JWT signing key is active; keys are made at start and on schedule",
                    ));
                }
                keys
            }
            TokenFormat::Opaque => Vec::new(),
        };
        Ok(Minter {
            keys,
            settings,
            app,
            refresh_token,
            user,
        })
    }

    /// The token for these facts; the same facts always give the same token.
    pub(crate) fn make(
        &self,
        nonce: &[u8],
        kid: Option<&str>,
        scopes: GrantSet,
        iat: Timestamp,
        exp: Timestamp,
    ) -> Result<Minted, OAuthError> {
        let Some(key) = kid.and_then(|kid| self.keys.iter().find(|k| k.kid == kid)) else {
            let pod = &self.settings.pod_id;
            return Ok(credential::derive_access_token(
                pod,
                self.refresh_token,
                nonce,
            ));
        };
        let claims = AccessClaims {
            issuer: self.settings.issuer(),
            audience: self.settings.issuer(),
            subject: self.user.to_string(),
            client_id: &self.app.client_id,
            scopes,
            issued_at: iat,
            expires_at: exp,
        };
        jwt::access_token(key, &claims, self.refresh_token, nonce).map_err(OAuthError::server)
    }

    /// A new access token issued at `now`: its value and what to store.
    pub(crate) fn fresh(
        &self,
        now: Timestamp,
        scopes: GrantSet,
    ) -> Result<(Minted, NewAccessToken), OAuthError> {
        let nonce = credential::nonce();
        let expires_at = now.plus(self.settings.tokens.access_ttl);
        let kid = active_key(&self.keys, now).map(|k| k.kid.clone());
        let value = self.make(&nonce, kid.as_deref(), scopes, now, expires_at)?;
        let record = NewAccessToken {
            digest: value.digest,
            nonce: nonce.to_vec(),
            scopes,
            issued_at: now,
            expires_at,
            kid,
        };
        Ok((value, record))
    }
}
