//! The platform's data behind the protected APIs: lists (the REST API's "databases") and
//! their contacts, always within one org.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::Result;
use crate::clock::Timestamp;
use crate::model::{Contact, List, OrgId};

/// How a contact is found.
#[derive(Clone, Copy, Debug)]
pub enum ContactKey<'a> {
    Id(i64),
    Email(&'a str),
}

/// Lists and contacts.
#[async_trait]
pub trait DataStore: Send + Sync {
    /// `Conflict("database")` if the org has a list of that name.
    async fn create_list(&self, org: OrgId, name: &str, now: Timestamp) -> Result<List>;
    async fn lists(&self, org: OrgId) -> Result<Vec<List>>;
    async fn list(&self, org: OrgId, id: i64) -> Result<Option<List>>;
    /// Deletes the list and its contacts; `false` if it does not exist in `org`.
    async fn delete_list(&self, org: OrgId, id: i64) -> Result<bool>;
    /// `NotFound("database")` if the list is not in `org`; `Conflict("contact")` if the
    /// e-mail address (case-insensitive) is already on the list.
    async fn add_contact(
        &self,
        org: OrgId,
        list: i64,
        email: &str,
        columns: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<Contact>;
    async fn contact(&self, org: OrgId, list: i64, key: ContactKey<'_>) -> Result<Option<Contact>>;
    /// A page of contacts ordered by id, and the list's total; `None` if the list is not in `org`.
    async fn contacts(
        &self,
        org: OrgId,
        list: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Option<(Vec<Contact>, i64)>>;
    /// Changes the e-mail (if given) and merges `columns` into the contact's columns.
    /// `None` if no such contact; `Conflict("contact")` if the new e-mail is taken.
    async fn update_contact(
        &self,
        org: OrgId,
        list: i64,
        id: i64,
        email: Option<&str>,
        columns: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<Option<Contact>>;
    /// `false` if there is no such contact on the list in `org`.
    async fn delete_contact(&self, org: OrgId, list: i64, id: i64) -> Result<bool>;
}
