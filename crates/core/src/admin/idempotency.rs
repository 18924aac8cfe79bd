//! Idempotency keys on creates (docs/architecture.md, the admin API): a create retried
//! under the same key makes nothing new and is answered with what the first one made; the
//! key used for a different request is refused. The key is stored by the create's own
//! transaction (with its audit event), so two creates under one key cannot both commit.

use sha2::{Digest as _, Sha256};

use super::{AdminError, Ctx, Result};
use crate::model::OrgId;
use crate::store::IdempotencyRecord;

/// How long a key is remembered; the sweeper forgets older ones.
pub const KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What a second create under a stored key conflicts on (`StoreError::Conflict`).
pub const WHAT: &str = "idempotency key";

/// The longest key accepted.
pub const MAX_KEY: usize = 255;

/// A create's idempotency key and the digest of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: [u8; 32],
}

impl Idempotency {
    /// The key `key` (1-255 visible ASCII characters) of the request made of `parts` (its
    /// method, path and body: what must be the same for a retry).
    pub fn new(key: &str, parts: &[&[u8]]) -> Result<Idempotency> {
        let visible = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if key.trim().is_empty() || key.len() > MAX_KEY || !visible {
            return Err(AdminError::Invalid(format!(
                "the idempotency key must be 1-{MAX_KEY} visible ASCII characters, e.g. a UUID"
            )));
        }
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        Ok(Idempotency {
            key: key.to_string(),
            fingerprint: h.finalize().into(),
        })
    }

    pub(crate) fn record(&self, org: OrgId) -> IdempotencyRecord {
        IdempotencyRecord {
            org_id: org,
            key: self.key.clone(),
            fingerprint: self.fingerprint,
        }
    }
}

/// What an earlier create under the caller's key ([`Ctx::idempotency`]) made in `org`: its
/// audit target (e.g. `application:<client id>`), or `None` when the key is new (or none
/// was sent). A key first used for a different request is [`AdminError::KeyReused`].
pub async fn replayed(cx: &Ctx<'_>, org: &str) -> Result<Option<String>> {
    let Some(idem) = cx.idempotency else {
        return Ok(None);
    };
    let org = cx.org(org).await?;
    match cx.store.idempotent_request(org.id, &idem.key).await? {
        None => Ok(None),
        Some(earlier) if earlier.fingerprint == idem.fingerprint => Ok(Some(earlier.target)),
        Some(_) => Err(AdminError::KeyReused(format!(
            "the idempotency key {:?} was used for a different request; use a new key for a new request",
            idem.key
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_every_part_and_where_one_ends() {
        let a = Idempotency::new("k1", &[b"POST", b"/a", b"{}"]).unwrap();
        assert_eq!(a, Idempotency::new("k1", &[b"POST", b"/a", b"{}"]).unwrap());
        let b = Idempotency::new("k1", &[b"POST", b"/a{", b"}"]).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        let c = Idempotency::new("k1", &[b"POST", b"/a", b"{ }"]).unwrap();
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn keys_are_short_visible_text() {
        for bad in ["", "  ", "a\u{0}b", "é", &"k".repeat(256)] {
            assert!(
                matches!(Idempotency::new(bad, &[]), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(Idempotency::new(&"k".repeat(255), &[]).is_ok());
    }
}
