//! The rows of the platform's data, the Event API's events, the audit log and signing keys.

use std::collections::BTreeMap;

use sqlx::FromRow;

use grantry_core::model::{Contact, Event, List};
use grantry_core::store::audit::AuditEvent;
use grantry_core::store::SigningKey;
use grantry_core::{StoreError, Timestamp};

use crate::sql::backend_err;

#[derive(FromRow)]
pub(crate) struct ListRow {
    pub id: i64,
    pub name: String,
    /// Its number of contacts.
    pub size: i64,
    pub created_at: i64,
}

impl From<ListRow> for List {
    fn from(r: ListRow) -> List {
        List {
            id: r.id,
            name: r.name,
            size: r.size,
            created_at: Timestamp(r.created_at),
        }
    }
}

#[derive(FromRow)]
pub(crate) struct ContactRow {
    id: i64,
    list_id: i64,
    email: String,
    /// A JSON object of strings.
    columns: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ContactRow> for Contact {
    type Error = StoreError;

    fn try_from(r: ContactRow) -> Result<Contact, StoreError> {
        Ok(Contact {
            id: r.id,
            list_id: r.list_id,
            email: r.email,
            columns: serde_json::from_str::<BTreeMap<String, String>>(&r.columns)
                .map_err(backend_err)?,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct EventRow {
    transaction_id: String,
    org_id: i64,
    /// `NULL` once the user was deleted.
    user_id: Option<i64>,
    event_id: String,
    event_key: String,
    /// A JSON object.
    params: String,
    received_at: i64,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Event, StoreError> {
        Ok(Event {
            transaction_id: r.transaction_id,
            org_id: r.org_id,
            user_id: r.user_id.unwrap_or(0),
            event_id: r.event_id,
            event_key: r.event_key,
            params: serde_json::from_str(&r.params).map_err(backend_err)?,
            received_at: Timestamp(r.received_at),
        })
    }
}

#[derive(FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    org_id: Option<i64>,
    at: i64,
    actor: String,
    action: String,
    target: String,
    /// JSON; an unreadable detail reads as `null`.
    detail: String,
    count: i64,
    last_at: i64,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> AuditEvent {
        AuditEvent {
            id: r.id,
            org_id: r.org_id,
            at: Timestamp(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
            count: r.count,
            last_at: Timestamp(r.last_at),
        }
    }
}

#[derive(FromRow)]
pub(crate) struct SigningKeyRow {
    kid: String,
    private_der: Vec<u8>,
    n: String,
    e: String,
    created_at: i64,
    active_from: i64,
}

impl From<SigningKeyRow> for SigningKey {
    fn from(r: SigningKeyRow) -> SigningKey {
        SigningKey {
            kid: r.kid,
            private_der: r.private_der,
            n: r.n,
            e: r.e,
            created_at: Timestamp(r.created_at),
            active_from: Timestamp(r.active_from),
        }
    }
}
