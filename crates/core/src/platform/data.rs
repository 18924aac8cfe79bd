//! The platform's data (docs/architecture.md, protected APIs): lists (the REST API's "databases") and their
//! contacts, shared by the REST API and the XML API. Every operation checks the principal's grant first, then
//! validates input, then acts only inside the principal's org.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::gate::{BearerError, Principal};
use crate::model::{Contact, List};
use crate::permissions::Grant;
use crate::store::{ContactKey, DataStore, StoreError};
use crate::validate::storable;

/// Largest page a caller can ask for.
pub const MAX_PAGE_SIZE: i64 = 1000;
const MAX_NAME: usize = 200;
const MAX_COLUMNS: usize = 200;
const MAX_VALUE: usize = 4000;
/// Most columns one contact holds, all updates together.
pub const MAX_CONTACT_COLUMNS: usize = 200;
/// Most bytes of column names and values one contact holds, all updates together.
pub const MAX_CONTACT_BYTES: usize = 64 * 1024;

/// Whether a contact's columns, as they would be stored, stay within [`MAX_CONTACT_COLUMNS`]
/// and [`MAX_CONTACT_BYTES`]; the error says which limit and what to do. The store checks
/// it on the merged columns of an update, under the contact's lock.
pub fn contact_within_limits(
    columns: &BTreeMap<String, String>,
) -> std::result::Result<(), String> {
    if columns.len() > MAX_CONTACT_COLUMNS {
        return Err(format!(
            "a contact holds at most {MAX_CONTACT_COLUMNS} columns, and this change would give it {}; \
             remove columns by setting fewer, or use another contact",
            columns.len()
        ));
    }
    let bytes: usize = columns.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_CONTACT_BYTES {
        return Err(format!(
            "a contact's column names and values hold at most {} KiB in all, and this change \
             would make them {bytes} bytes; send shorter values",
            MAX_CONTACT_BYTES / 1024
        ));
    }
    Ok(())
}

/// Why a data operation failed.
#[derive(Debug)]
pub enum DataError {
    /// The principal lacks the grant this operation needs.
    Scope(BearerError),
    /// No such thing in the caller's org (the word names it: `database`, `contact`).
    NotFound(&'static str),
    Conflict(String),
    /// Bad input; `field` names the offending field when there is one.
    Invalid {
        field: Option<&'static str>,
        message: String,
    },
    Store(StoreError),
}

impl From<StoreError> for DataError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => DataError::NotFound(what),
            StoreError::Conflict(what) => DataError::Conflict(format!("the {what} already exists")),
            StoreError::Limit(message) => DataError::Invalid {
                field: Some("columns"),
                message,
            },
            e => DataError::Store(e),
        }
    }
}

impl From<BearerError> for DataError {
    fn from(e: BearerError) -> Self {
        DataError::Scope(e)
    }
}

type Result<T> = std::result::Result<T, DataError>;

fn invalid(field: &'static str, message: impl Into<String>) -> DataError {
    DataError::Invalid {
        field: Some(field),
        message: message.into(),
    }
}

/// A valid e-mail address, trimmed, or `Invalid` naming `field`.
pub fn validate_email(field: &'static str, email: &str) -> Result<String> {
    crate::validate::email(email)
        .ok_or_else(|| invalid(field, format!("{email:?} is not a valid e-mail address")))
}

fn validate_columns(columns: &BTreeMap<String, String>) -> Result<()> {
    if columns.len() > MAX_COLUMNS {
        return Err(invalid("columns", format!("at most {MAX_COLUMNS} columns")));
    }
    for (k, v) in columns {
        if k.trim().is_empty() || k.len() > MAX_NAME {
            return Err(invalid("columns", "column names must be 1-200 characters"));
        }
        if k.eq_ignore_ascii_case("email") {
            return Err(invalid(
                "columns",
                "set the e-mail address with the email field, not a column",
            ));
        }
        if v.len() > MAX_VALUE {
            return Err(invalid(
                "columns",
                format!("column {k} is longer than {MAX_VALUE} characters"),
            ));
        }
    }
    contact_within_limits(columns).map_err(|m| invalid("columns", m))
}

pub async fn create_list(
    store: &dyn DataStore,
    now: Timestamp,
    p: &Principal,
    name: &str,
) -> Result<List> {
    p.require(Grant::ListsWrite)?;
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(invalid("name", "name must be 1-200 characters"));
    }
    if !storable(name) {
        return Err(invalid("name", "name must not contain a NUL character"));
    }
    Ok(store.create_list(p.org_id, name, now).await?)
}

pub async fn lists(store: &dyn DataStore, p: &Principal) -> Result<Vec<List>> {
    p.require(Grant::ListsRead)?;
    Ok(store.lists(p.org_id).await?)
}

pub async fn list(store: &dyn DataStore, p: &Principal, id: i64) -> Result<List> {
    p.require(Grant::ListsRead)?;
    store
        .list(p.org_id, id)
        .await?
        .ok_or(DataError::NotFound("database"))
}

pub async fn delete_list(store: &dyn DataStore, p: &Principal, id: i64) -> Result<()> {
    p.require(Grant::ListsWrite)?;
    if store.delete_list(p.org_id, id).await? {
        Ok(())
    } else {
        Err(DataError::NotFound("database"))
    }
}

pub async fn add_contact(
    store: &dyn DataStore,
    now: Timestamp,
    p: &Principal,
    list: i64,
    email: &str,
    columns: &BTreeMap<String, String>,
) -> Result<Contact> {
    p.require(Grant::ContactsWrite)?;
    let email = validate_email("email", email)?;
    validate_columns(columns)?;
    Ok(store
        .add_contact(p.org_id, list, &email, columns, now)
        .await?)
}

pub async fn contact(
    store: &dyn DataStore,
    p: &Principal,
    list: i64,
    key: ContactKey<'_>,
) -> Result<Contact> {
    p.require(Grant::ContactsRead)?;
    if let ContactKey::Email(e) = key {
        if !storable(e) {
            return Err(invalid(
                "email",
                "the e-mail address must not contain a NUL character",
            ));
        }
    }
    if store.list(p.org_id, list).await?.is_none() {
        return Err(DataError::NotFound("database"));
    }
    store
        .contact(p.org_id, list, key)
        .await?
        .ok_or(DataError::NotFound("contact"))
}

/// One page of a list's contacts. `page` counts from 1.
pub async fn contacts(
    store: &dyn DataStore,
    p: &Principal,
    list: i64,
    page: i64,
    page_size: i64,
) -> Result<(Vec<Contact>, i64)> {
    p.require(Grant::ContactsRead)?;
    if page < 1 {
        return Err(invalid("page", "page counts from 1"));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(invalid(
            "pageSize",
            format!("pageSize must be 1-{MAX_PAGE_SIZE}"),
        ));
    }
    let offset = (page - 1).saturating_mul(page_size);
    store
        .contacts(p.org_id, list, offset, page_size)
        .await?
        .ok_or(DataError::NotFound("database"))
}

pub async fn update_contact(
    store: &dyn DataStore,
    now: Timestamp,
    p: &Principal,
    list: i64,
    id: i64,
    email: Option<&str>,
    columns: &BTreeMap<String, String>,
) -> Result<Contact> {
    p.require(Grant::ContactsWrite)?;
    let email = email.map(|e| validate_email("email", e)).transpose()?;
    validate_columns(columns)?;
    if store.list(p.org_id, list).await?.is_none() {
        return Err(DataError::NotFound("database"));
    }
    store
        .update_contact(p.org_id, list, id, email.as_deref(), columns, now)
        .await?
        .ok_or(DataError::NotFound("contact"))
}

pub async fn delete_contact(
    store: &dyn DataStore,
    p: &Principal,
    list: i64,
    id: i64,
) -> Result<()> {
    p.require(Grant::ContactsWrite)?;
    if store.list(p.org_id, list).await?.is_none() {
        return Err(DataError::NotFound("database"));
    }
    if store.delete_contact(p.org_id, list, id).await? {
        Ok(())
    } else {
        Err(DataError::NotFound("contact"))
    }
}
