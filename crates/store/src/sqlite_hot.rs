//! The hot reads and writes on SQLite. Writes run through [`crate::group_commit::GroupCommit`]: each is a closure over the commit
//! thread's connection, so concurrent writes share one transaction and one fsync; reads run
//! on the calling thread ([`crate::sqlite_read`]). The
//! statements are the ones PostgreSQL runs (`$N` parameters, bound by name here).

use rusqlite::{named_params, Connection, OptionalExtension};

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, AccountAccess, Event, List};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Reissue,
};
use grantry_core::{GrantSet, StoreError, Timestamp};

use crate::common::{self, naming_token};
use crate::group_commit::sqlite_err;
use crate::sqlite::SqliteStore;

fn insert_audit(conn: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    conn.prepare_cached(common::INSERT_AUDIT)
        .and_then(|mut st| {
            st.execute(named_params! {
                "$1": a.org_id,
                "$2": a.at.0,
                "$3": a.actor,
                "$4": a.action,
                "$5": a.target,
                "$6": a.detail.to_string(),
            })
        })
        .map_err(sqlite_err)?;
    Ok(())
}

/// What the locked half of a refresh found.
enum Locked {
    Revoked,
    Issued(AccessTokenRecord),
    /// The newest token is not the one the caller decided on: decide again on this one.
    Changed(Option<AccessTokenRecord>),
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccessTokenRecord> {
    Ok(AccessTokenRecord {
        id: r.get("id")?,
        nonce: r.get("nonce")?,
        scopes: GrantSet::from_bits(r.get("scopes")?),
        issued_at: Timestamp(r.get("issued_at")?),
        expires_at: Timestamp(r.get("expires_at")?),
        kid: r.get("kid")?,
    })
}

fn list_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<List> {
    Ok(List {
        id: r.get("id")?,
        name: r.get("name")?,
        size: r.get("size")?,
        created_at: Timestamp(r.get("created_at")?),
    })
}

fn newest_token(conn: &Connection, refresh: i64) -> Result<Option<AccessTokenRecord>, StoreError> {
    conn.prepare_cached(common::NEWEST_TOKEN)
        .and_then(|mut st| {
            st.query_row(named_params! {"$1": refresh}, token_row)
                .optional()
        })
        .map_err(sqlite_err)
}

/// Issues `fresh` for `refresh` if its newest live token is still `expected`.
fn issue_if_unchanged(
    conn: &Connection,
    refresh: i64,
    expected: Option<i64>,
    fresh: NewAccessToken,
    audit: NewAudit,
) -> Result<Locked, StoreError> {
    let access: Option<i64> = conn
        .prepare_cached(common::LOCK_REFRESH)
        .and_then(|mut st| {
            st.query_row(
                named_params! {"$1": refresh, "$2": fresh.issued_at.0},
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(sqlite_err)?;
    let Some(access) = access else {
        return Ok(Locked::Revoked);
    };
    let owner: Option<(i64, i64, i64)> = conn
        .prepare_cached(common::ACCESS_OWNER)
        .and_then(|mut st| {
            st.query_row(named_params! {"$1": access}, |r| {
                Ok((r.get("org_id")?, r.get("app_id")?, r.get("user_id")?))
            })
            .optional()
        })
        .map_err(sqlite_err)?;
    let Some((org, app, user)) = owner else {
        return Ok(Locked::Revoked);
    };
    let newest = newest_token(conn, refresh)?;
    if newest.as_ref().map(|t| t.id) != expected {
        return Ok(Locked::Changed(newest));
    }
    let id: i64 = conn
        .prepare_cached(common::INSERT_REFRESHED_TOKEN)
        .and_then(|mut st| {
            st.query_row(
                named_params! {
                    "$1": org, "$2": user, "$3": app, "$4": access, "$5": refresh,
                    "$6": fresh.digest.as_bytes(), "$7": fresh.nonce, "$8": fresh.scopes.bits(),
                    "$9": fresh.issued_at.0, "$10": fresh.expires_at.0, "$11": fresh.kid,
                },
                |r| r.get(0),
            )
        })
        .map_err(sqlite_err)?;
    insert_audit(conn, &naming_token(audit, id))?;
    Ok(Locked::Issued(fresh.stored_as(id)))
}

impl SqliteStore {
    pub(crate) async fn list_by_id(&self, org: i64, id: i64) -> Result<Option<List>, StoreError> {
        self.inline_reads().read(|conn| {
            conn.prepare_cached(common::LIST_BY_ID)?
                .query_row(named_params! {"$1": org, "$2": id}, list_row)
                .optional()
        })
    }

    pub(crate) async fn lists_of(&self, org: i64) -> Result<Vec<List>, StoreError> {
        self.inline_reads().read(|conn| {
            conn.prepare_cached(common::LISTS_OF_ORG)?
                .query_map(named_params! {"$1": org}, list_row)?
                .collect()
        })
    }

    pub(crate) async fn load_newest(
        &self,
        refresh: i64,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.inline_reads().read(|conn| {
            conn.prepare_cached(common::NEWEST_LIVE_TOKEN)?
                .query_row(named_params! {"$1": refresh}, token_row)
                .optional()
        })
    }

    pub(crate) async fn load_refresh_token(
        &self,
        digest: &Digest,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.inline_reads().read(|conn| {
            conn.prepare_cached(common::REFRESH_BY_DIGEST)?
                .query_row(named_params! {"$1": digest.as_bytes()}, |r| {
                    Ok(RefreshTokenRecord {
                        id: r.get("r_id")?,
                        access: AccountAccess {
                            id: r.get("id")?,
                            org_id: r.get("org_id")?,
                            app_id: r.get("app_id")?,
                            user_id: r.get("user_id")?,
                            created_by: r.get("created_by")?,
                            scopes: GrantSet::from_bits(r.get("scopes")?),
                            created_at: Timestamp(r.get("created_at")?),
                        },
                        scopes: GrantSet::from_bits(r.get("r_scopes")?),
                        created_at: Timestamp(r.get("r_created_at")?),
                        rotated_at: r.get::<_, Option<i64>>("r_rotated_at")?.map(Timestamp),
                        family_id: r.get("r_family")?,
                        client_id: r.get("p_client_id")?,
                        username: r.get("u_username")?,
                    })
                })
                .optional()
        })
    }

    pub(crate) async fn insert_key_token(
        &self,
        key: i64,
        org: i64,
        user: i64,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> Result<i64, StoreError> {
        self.committer()
            .write(move |conn| {
                let id: i64 = conn
                    .prepare_cached(common::INSERT_KEY_TOKEN)
                    .and_then(|mut st| {
                        st.query_row(
                            named_params! {
                                "$1": org, "$2": user, "$3": key, "$4": token.digest.as_bytes(),
                                "$5": token.nonce, "$6": token.scopes.bits(),
                                "$7": token.issued_at.0, "$8": token.expires_at.0,
                            },
                            |r| r.get(0),
                        )
                    })
                    .map_err(sqlite_err)?;
                insert_audit(conn, &naming_token(audit, id))?;
                Ok(id)
            })
            .await
    }

    pub(crate) async fn insert_event(&self, event: Event) -> Result<(), StoreError> {
        self.committer()
            .write(move |conn| {
                conn.prepare_cached(common::INSERT_EVENT)
                    .and_then(|mut st| {
                        st.execute(named_params! {
                            "$1": event.transaction_id, "$2": event.org_id, "$3": event.user_id,
                            "$4": event.event_id, "$5": event.event_key,
                            "$6": serde_json::Value::Object(event.params).to_string(),
                            "$7": event.received_at.0,
                        })
                    })
                    .map_err(sqlite_err)?;
                Ok(())
            })
            .await
    }

    pub(crate) async fn insert_audit_event(&self, audit: NewAudit) -> Result<(), StoreError> {
        self.committer()
            .write(move |conn| insert_audit(conn, &audit))
            .await
    }

    pub(crate) async fn mark_used(&self, token: i64, audit: NewAudit) -> Result<(), StoreError> {
        self.committer()
            .write(move |conn| {
                let n = conn
                    .prepare_cached(common::MARK_USED)
                    .and_then(|mut st| st.execute(named_params! {"$1": token, "$2": audit.at.0}))
                    .map_err(sqlite_err)?;
                if n == 1 {
                    insert_audit(conn, &audit)?;
                }
                Ok(())
            })
            .await
    }

    /// The locked half of `refresh_access_token`, as a compare-and-set inside a batch: the
    /// write issues only if the newest token is still the one `decide` was shown (`seen`);
    /// otherwise `decide` is shown the newest one and, if it still says issue, the write is
    /// queued again. SQLite runs one writer at a time, so this serializes like a lock.
    pub(crate) async fn refresh_locked(
        &self,
        refresh: i64,
        decide: &DecideReissue<'_>,
        fresh: NewAccessToken,
        audit: NewAudit,
        seen: Option<i64>,
    ) -> Result<RefreshOutcome, StoreError> {
        if seen.is_none() {
            // The read saw no token; `decide` is shown that too before anything is written.
            match decide(None) {
                Reissue::Issue => {}
                Reissue::Reject { retry_at } => return Ok(RefreshOutcome::Rejected { retry_at }),
                Reissue::Reuse => {
                    return Err(StoreError::Backend("reuse decided without a token".into()))
                }
            }
        }
        let mut expected = seen;
        loop {
            let (f, a) = (fresh.clone(), audit.clone());
            let locked = self
                .committer()
                .write(move |conn| issue_if_unchanged(conn, refresh, expected, f, a))
                .await?;
            match locked {
                Locked::Revoked => return Ok(RefreshOutcome::Revoked),
                Locked::Issued(t) => return Ok(RefreshOutcome::Issued(t)),
                Locked::Changed(newest) => match decide(newest.as_ref()) {
                    Reissue::Issue => expected = newest.map(|t| t.id),
                    Reissue::Reject { retry_at } => {
                        return Ok(RefreshOutcome::Rejected { retry_at })
                    }
                    Reissue::Reuse => {
                        return newest.map(RefreshOutcome::Reused).ok_or_else(|| {
                            StoreError::Backend("reuse decided without a token".into())
                        })
                    }
                },
            }
        }
    }
}
