//! Lists (the REST API's "databases") and their contacts, always within one org
//! ([`grantry_core::store::DataStore`]).

use std::collections::BTreeMap;

use grantry_core::model::Contact;

use super::rows::contact_cols;

pub(crate) const INSERT_LIST: &str =
    "INSERT INTO lists (org_id, name, created_at) VALUES ($1, $2, $3) RETURNING id";

/// Every list of an org, with its size.
pub(crate) const LISTS_OF_ORG: &str = "SELECT l.id, l.name, l.created_at, \
    (SELECT COUNT(*) FROM contacts c WHERE c.list_id = l.id) AS size FROM lists l \
    WHERE l.org_id = $1 ORDER BY l.id";

/// One list of an org, with its size.
pub(crate) const LIST_BY_ID: &str = "SELECT l.id, l.name, l.created_at, \
    (SELECT COUNT(*) FROM contacts c WHERE c.list_id = l.id) AS size FROM lists l \
    WHERE l.org_id = $1 AND l.id = $2";

pub(crate) const DELETE_LIST_CONTACTS: &str =
    "DELETE FROM contacts WHERE list_id = $1 AND org_id = $2";

pub(crate) const DELETE_LIST: &str = "DELETE FROM lists WHERE id = $1 AND org_id = $2";

pub(crate) const LIST_EXISTS: &str = "SELECT id FROM lists WHERE id = $1 AND org_id = $2";

/// `$4` is the e-mail address lowercased, which is unique per list.
pub(crate) const INSERT_CONTACT: &str = concat!(
    "INSERT INTO contacts (org_id, list_id, email, email_norm, columns, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ",
    contact_cols!()
);

pub(crate) const CONTACT_BY_ID: &str = concat!(
    "SELECT ",
    contact_cols!(),
    " FROM contacts WHERE org_id = $1 AND list_id = $2 AND id = $3"
);

/// `$3` is the e-mail address trimmed and lowercased.
pub(crate) const CONTACT_BY_EMAIL: &str = concat!(
    "SELECT ",
    contact_cols!(),
    " FROM contacts WHERE org_id = $1 AND list_id = $2 AND email_norm = $3"
);

pub(crate) const CONTACTS_PAGE: &str = concat!(
    "SELECT ",
    contact_cols!(),
    " FROM contacts WHERE org_id = $1 AND list_id = $2 ORDER BY id LIMIT $3 OFFSET $4"
);

/// Reads the contact through an UPDATE, which takes its row lock (PostgreSQL) before the
/// merge: concurrent updates of one contact then merge one after the other instead of each
/// overwriting the others' columns.
pub(crate) const LOCK_CONTACT: &str = concat!(
    "UPDATE contacts SET updated_at = $4 WHERE org_id = $1 AND list_id = $2 AND id = $3 \
     RETURNING ",
    contact_cols!()
);

pub(crate) const WRITE_CONTACT: &str = "UPDATE contacts SET email = $2, email_norm = $3, \
    columns = $4, updated_at = $5 WHERE id = $1";

pub(crate) const DELETE_CONTACT: &str =
    "DELETE FROM contacts WHERE org_id = $1 AND list_id = $2 AND id = $3";

/// Merges `columns` and the new e-mail address (if any) into the contact.
pub(crate) fn merge_contact(
    c: &mut Contact,
    email: Option<&str>,
    columns: &BTreeMap<String, String>,
) {
    for (k, v) in columns {
        c.columns.insert(k.clone(), v.clone());
    }
    if let Some(e) = email {
        c.email = e.to_string();
    }
}

/// Implements [`grantry_core::store::DataStore`] for a [`super::Backend`].
macro_rules! impl_data_store {
    ($store:ty) => {
        const _: () = {
            use std::collections::BTreeMap;

            use async_trait::async_trait;
            use sqlx::Database;

            use grantry_core::model::{Contact, List, OrgId};
            use grantry_core::store::{ContactKey, DataStore, Result};
            use grantry_core::{StoreError, Timestamp};

            use $crate::sql::data::*;
            use $crate::sql::rows::ContactRow;
            use $crate::sql::{backend_err, conflict_or, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;
            type Conn = <Db as Database>::Connection;

            /// A uniqueness violation is a taken e-mail address; a missing list (deleted
            /// after the check, on PostgreSQL) is `NotFound`.
            fn contact_err(e: sqlx::Error) -> StoreError {
                match &e {
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        StoreError::NotFound("database")
                    }
                    _ => conflict_or("contact")(e),
                }
            }

            async fn insert_contact(
                conn: &mut Conn,
                org: OrgId,
                list: i64,
                email: &str,
                columns: &BTreeMap<String, String>,
                now: Timestamp,
            ) -> Result<Contact> {
                let row = sqlx::query_as::<_, ContactRow>(INSERT_CONTACT)
                    .bind(org)
                    .bind(list)
                    .bind(email)
                    .bind(email.to_lowercase())
                    .bind(serde_json::to_string(columns).map_err(backend_err)?)
                    .bind(now.0)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(contact_err)?;
                row.try_into()
            }

            async fn write_contact(conn: &mut Conn, c: &Contact, now: Timestamp) -> Result<()> {
                sqlx::query(WRITE_CONTACT)
                    .bind(c.id)
                    .bind(&c.email)
                    .bind(c.email.to_lowercase())
                    .bind(serde_json::to_string(&c.columns).map_err(backend_err)?)
                    .bind(now.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(conflict_or("contact"))?;
                Ok(())
            }

            #[async_trait]
            impl DataStore for $store {
                async fn create_list(
                    &self,
                    org: OrgId,
                    name: &str,
                    now: Timestamp,
                ) -> Result<List> {
                    let mut tx = self.begin_write().await?;
                    let id: i64 = sqlx::query_scalar(INSERT_LIST)
                        .bind(org)
                        .bind(name)
                        .bind(now.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(conflict_or("database"))?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(List {
                        id,
                        name: name.to_string(),
                        size: 0,
                        created_at: now,
                    })
                }

                async fn lists(&self, org: OrgId) -> Result<Vec<List>> {
                    self.lists_of(org).await
                }

                async fn list(&self, org: OrgId, id: i64) -> Result<Option<List>> {
                    self.list_by_id(org, id).await
                }

                async fn delete_list(&self, org: OrgId, id: i64) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(DELETE_LIST_CONTACTS)
                        .bind(id)
                        .bind(org)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    let n = sqlx::query(DELETE_LIST)
                        .bind(id)
                        .bind(org)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected();
                    Db::commit(tx, self.caches()).await?;
                    Ok(n == 1)
                }

                async fn add_contact(
                    &self,
                    org: OrgId,
                    list: i64,
                    email: &str,
                    columns: &BTreeMap<String, String>,
                    now: Timestamp,
                ) -> Result<Contact> {
                    let mut tx = self.begin_write().await?;
                    let exists: Option<i64> = sqlx::query_scalar(LIST_EXISTS)
                        .bind(list)
                        .bind(org)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound("database"));
                    }
                    let c = insert_contact(&mut tx, org, list, email, columns, now).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(c)
                }

                async fn contact(
                    &self,
                    org: OrgId,
                    list: i64,
                    key: ContactKey<'_>,
                ) -> Result<Option<Contact>> {
                    let q = match key {
                        ContactKey::Id(id) => {
                            sqlx::query_as(CONTACT_BY_ID).bind(org).bind(list).bind(id)
                        }
                        ContactKey::Email(e) => sqlx::query_as(CONTACT_BY_EMAIL)
                            .bind(org)
                            .bind(list)
                            .bind(e.trim().to_lowercase()),
                    };
                    let row: Option<ContactRow> =
                        q.fetch_optional(self.reader()).await.map_err(backend_err)?;
                    row.map(Contact::try_from).transpose()
                }

                async fn contacts(
                    &self,
                    org: OrgId,
                    list: i64,
                    offset: i64,
                    limit: i64,
                ) -> Result<Option<(Vec<Contact>, i64)>> {
                    let Some(l) = self.list_by_id(org, list).await? else {
                        return Ok(None);
                    };
                    let rows = sqlx::query_as::<_, ContactRow>(CONTACTS_PAGE)
                        .bind(org)
                        .bind(list)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    let items = rows
                        .into_iter()
                        .map(Contact::try_from)
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Some((items, l.size)))
                }

                async fn update_contact(
                    &self,
                    org: OrgId,
                    list: i64,
                    id: i64,
                    email: Option<&str>,
                    columns: &BTreeMap<String, String>,
                    now: Timestamp,
                ) -> Result<Option<Contact>> {
                    let mut tx = self.begin_write().await?;
                    let Some(row) = sqlx::query_as::<_, ContactRow>(LOCK_CONTACT)
                        .bind(org)
                        .bind(list)
                        .bind(id)
                        .bind(now.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?
                    else {
                        return Ok(None);
                    };
                    let mut c = Contact::try_from(row)?;
                    merge_contact(&mut c, email, columns);
                    grantry_core::platform::data::contact_within_limits(&c.columns)
                        .map_err(StoreError::Limit)?;
                    c.updated_at = now;
                    write_contact(&mut tx, &c, now).await?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(Some(c))
                }

                async fn delete_contact(&self, org: OrgId, list: i64, id: i64) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    let n = sqlx::query(DELETE_CONTACT)
                        .bind(org)
                        .bind(list)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected();
                    Db::commit(tx, self.caches()).await?;
                    Ok(n == 1)
                }
            }
        };
    };
}

pub(crate) use impl_data_store;
