//! JWT access tokens (RFC 9068), an option per application: RS256-signed with keys that are
//! published at `/oauth/jwks` before they sign anything, rotated on a schedule, and kept
//! published until the last token they signed has expired.
//!
//! The token is still looked up by its digest on grantry's own APIs, so revocation wins over
//! the signature. Its `jti` is derived from the refresh token it came from, so the database
//! alone (keys included) cannot rebuild a token; RS256 (PKCS #1 v1.5) signatures are
//! deterministic, so the same token can be handed back inside the re-issue window.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::credential::{hmac_sha256, Digest, Minted};
use crate::permissions::GrantSet;
use crate::store::{SigningKey, SigningKeyStore, StoreError};

/// Generates a 2048-bit RSA key that starts signing at `active_from`.
pub fn generate_key(now: Timestamp, active_from: Timestamp) -> Result<SigningKey, String> {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| e.to_string())?;
    let der = key.to_pkcs1_der().map_err(|e| e.to_string())?;
    let public = key.to_public_key();
    let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
    // RFC 7638-style thumbprint as the key id.
    let thumb = Digest::of(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
    Ok(SigningKey {
        kid: URL_SAFE_NO_PAD.encode(&thumb.0[..16]),
        private_der: der.as_bytes().to_vec(),
        n,
        e,
        created_at: now,
        active_from,
    })
}

/// The key that signs at `now`: the newest one already active.
pub fn active_key(keys: &[SigningKey], now: Timestamp) -> Option<&SigningKey> {
    keys.iter()
        .filter(|k| k.active_from <= now)
        .max_by_key(|k| k.active_from)
}

/// The keys to publish at `now`: the active one, the ones waiting to become active, and the
/// retired ones whose last token may still be valid (retired less than `access_ttl` ago).
pub fn published(keys: &[SigningKey], now: Timestamp, access_ttl: Duration) -> Vec<&SigningKey> {
    let mut keys: Vec<&SigningKey> = keys.iter().collect();
    keys.sort_by_key(|k| k.active_from);
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let retired_at = keys
            .get(i + 1)
            .map(|next| next.active_from)
            .filter(|t| *t <= now);
        if retired_at.is_none_or(|t| now < t.plus(access_ttl)) {
            out.push(*k);
        }
    }
    out
}

/// When new keys must be created so that one is always active and its successor is published
/// a whole period before it signs: the `active_from` times of the keys to add.
pub fn keys_needed(keys: &[SigningKey], now: Timestamp, rotate_every: Duration) -> Vec<Timestamp> {
    let mut needed = Vec::new();
    let active_from = match active_key(keys, now) {
        Some(k) => k.active_from,
        None => {
            needed.push(now);
            now
        }
    };
    let has_next = keys.iter().any(|k| k.active_from > now);
    if !has_next {
        let next = active_from
            .plus(rotate_every)
            .max(now.plus(rotate_every.min(Duration::from_secs(3600))));
        needed.push(next);
    }
    needed
}

/// The JWK Set document (RFC 7517) of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": k.n, "e": k.e}))
        .collect();
    json!({ "keys": keys })
}

/// The claims of an access token (RFC 9068 §2.2).
pub struct AccessClaims<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub subject: String,
    pub client_id: &'a str,
    pub scopes: GrantSet,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Signs an access token. `jti` is HMAC(refresh token, nonce), so only the holder of the
/// refresh token can make the same token again.
pub fn access_token(
    key: &SigningKey,
    claims: &AccessClaims<'_>,
    refresh_token: &str,
    nonce: &[u8],
) -> Result<Minted, String> {
    let mac = hmac_sha256(refresh_token.as_bytes(), &[b"jti", nonce]);
    let jti = URL_SAFE_NO_PAD.encode(&mac[..16]);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    let body = json!({
        "iss": claims.issuer,
        "aud": claims.audience,
        "sub": claims.subject,
        "client_id": claims.client_id,
        "scope": claims.scopes.to_scope(),
        "iat": claims.issued_at.millis() / 1000,
        "exp": claims.expires_at.millis() / 1000,
        "jti": jti,
    });
    let token = jsonwebtoken::encode(
        &header,
        &body,
        &jsonwebtoken::EncodingKey::from_rsa_der(&key.private_der),
    )
    .map_err(|e| e.to_string())?;
    Ok(Minted {
        digest: Digest::of(&token),
        value: token.into(),
    })
}

/// Makes sure a key is active and its successor already published, creating what is missing;
/// returns every key.
pub async fn ensure_keys(
    store: &dyn SigningKeyStore,
    now: Timestamp,
    rotate_every: Duration,
) -> Result<Vec<SigningKey>, StoreError> {
    let keys = store.signing_keys().await?;
    let needed = keys_needed(&keys, now, rotate_every);
    if needed.is_empty() {
        return Ok(keys);
    }
    for active_from in needed {
        let key = generate_key(now, active_from).map_err(StoreError::Backend)?;
        store.add_signing_key(&key).await?;
    }
    store.signing_keys().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    fn key_at(active: i64) -> SigningKey {
        SigningKey {
            kid: format!("k{active}"),
            private_der: vec![],
            n: String::new(),
            e: String::new(),
            created_at: Timestamp(0),
            active_from: Timestamp(active),
        }
    }

    #[test]
    fn the_next_key_is_published_before_it_signs_and_the_old_stays_until_its_tokens_expire() {
        let day = 24 * 3600 * 1000;
        let keys = vec![key_at(0), key_at(30 * day)];
        let now = Timestamp(day);
        assert_eq!(active_key(&keys, now).unwrap().kid, "k0");
        assert_eq!(published(&keys, now, 4 * H).len(), 2);
        // Just after the switch both are published; four hours later only the new one.
        let switch = Timestamp(30 * day);
        assert_eq!(
            active_key(&keys, switch).unwrap().kid,
            format!("k{}", 30 * day)
        );
        assert_eq!(published(&keys, switch.plus(3 * H), 4 * H).len(), 2);
        assert_eq!(published(&keys, switch.plus(4 * H), 4 * H).len(), 1);
        assert!(keys_needed(&keys, now, Duration::from_secs(30 * 24 * 3600)).is_empty());
        assert_eq!(
            keys_needed(&keys, switch, Duration::from_secs(30 * 24 * 3600)).len(),
            1
        );
        assert_eq!(keys_needed(&[], now, H).len(), 2);
    }

    #[test]
    fn rs256_tokens_are_deterministic_and_verify_with_the_published_key() {
        let key = generate_key(Timestamp(0), Timestamp(0)).unwrap();
        let claims = AccessClaims {
            issuer: "https://as.example",
            audience: "https://as.example",
            subject: "42".into(),
            client_id: "c",
            scopes: GrantSet::all(),
            issued_at: Timestamp(1_000_000),
            expires_at: Timestamp(1_000_000 + 4 * 3600 * 1000),
        };
        let a = access_token(&key, &claims, "grt_x", b"n").unwrap();
        let b = access_token(&key, &claims, "grt_x", b"n").unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(a.value.expose_secret(), b.value.expose_secret());
        assert!(crate::credential::looks_like_jwt(a.value.expose_secret()));
        let dk = jsonwebtoken::DecodingKey::from_rsa_components(&key.n, &key.e).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&["https://as.example"]);
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(a.value.expose_secret(), &dk, &v).unwrap();
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(data.claims["client_id"], "c");
    }
}
