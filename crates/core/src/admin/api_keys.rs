//! API users' secret keys, as an org admin manages them: generated into the free
//! slot and shown once; deleted keys keep working for `api_keys.delete_grace`.

use secrecy::SecretString;

use super::{conflict, AdminError, Ctx, Result};
use crate::clock::Timestamp;
use crate::credential::{self, Kind};
use crate::model::{ApiKey, User, UserKind};

/// A new secret key, shown once.
pub struct GeneratedKey {
    pub key_id: String,
    pub slot: u8,
    pub secret: SecretString,
    /// `base64(<key id>:<secret>)`, ready for `Authorization: Bearer`.
    pub bearer: SecretString,
}

/// What deleting a key did.
pub struct DeletedKeyInfo {
    pub deleted_slot: u8,
    /// When the deleted key stops working everywhere.
    pub stops_at: Timestamp,
    /// The key from slot 2 is now key 1.
    pub promoted: bool,
}

async fn api_user(cx: &Ctx<'_>, org: &str, username: &str) -> Result<(User, String)> {
    let org = cx.org(org).await?;
    let user = cx.user(&org, username).await?;
    match (&user.kind, user.key_id.clone()) {
        (UserKind::Api, Some(key_id)) => Ok((user, key_id)),
        _ => Err(AdminError::Invalid(format!(
            "{username} is a UI user; secret keys belong to API users (`grantry user add --kind api`)"
        ))),
    }
}

/// Generates a secret key in the API user's free slot.
pub async fn generate(cx: &Ctx<'_>, org: &str, username: &str) -> Result<GeneratedKey> {
    let (user, key_id) = api_user(cx, org, username).await?;
    let minted = credential::mint(Kind::ApiSecretKey, &cx.settings.pod_id);
    let audit = cx.audit(
        Some(user.org_id),
        "api_key.generated",
        format!("user:{username}"),
    );
    let key = cx
        .store
        .generate_api_key(user.id, minted.digest, cx.now, audit)
        .await
        .map_err(|e| conflict(e, || format!(
            "{username} already has two secret keys; delete one first (`grantry key delete --slot 1`)"
        )))?;
    let bearer = credential::api_key_bearer(&key_id, &minted.value);
    Ok(GeneratedKey {
        key_id,
        slot: key.slot.unwrap_or(1),
        secret: minted.value,
        bearer: bearer.into(),
    })
}

/// Deletes the key in `slot`; it keeps working for `api_keys.delete_grace`.
pub async fn delete(cx: &Ctx<'_>, org: &str, username: &str, slot: u8) -> Result<DeletedKeyInfo> {
    if !(1..=2).contains(&slot) {
        return Err(AdminError::Invalid("the slot is 1 or 2".into()));
    }
    let (user, _) = api_user(cx, org, username).await?;
    let stops_at = cx.now.plus(cx.settings.api_keys.delete_grace);
    let audit = cx
        .audit(
            Some(user.org_id),
            "api_key.deleted",
            format!("user:{username}"),
        )
        .with_detail(serde_json::json!({"slot": slot, "stops_at": stops_at.to_rfc3339()}));
    let deleted = cx
        .store
        .delete_api_key(user.id, slot, cx.now, stops_at, audit)
        .await?
        .ok_or_else(|| {
            AdminError::NotFound(format!("{username} has no secret key in slot {slot}"))
        })?;
    Ok(DeletedKeyInfo {
        deleted_slot: slot,
        stops_at,
        promoted: deleted.promoted,
    })
}

/// The API user's Key ID and keys: live ones by slot, then deleted ones still in their
/// grace period.
pub async fn list(cx: &Ctx<'_>, org: &str, username: &str) -> Result<(String, Vec<ApiKey>)> {
    let (user, key_id) = api_user(cx, org, username).await?;
    Ok((key_id, cx.store.api_keys(user.id, cx.now).await?))
}
