//! The hot reads and writes on SQLite ([`crate::sql::Backend`]'s hot paths). Writes run
//! through [`GroupCommit`]: each is a closure over the commit thread's connection, so
//! concurrent writes share one transaction and one fsync; reads run on the calling thread
//! ([`InlineReaders`]). The statements are the ones PostgreSQL runs (`$N` parameters, bound
//! by name here), and the rows fill the same structs as sqlx's ([`crate::sql::rows`]).

use rusqlite::{named_params, Connection, OptionalExtension, Row};

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, Event, List, OrgId, UserId};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Reissue, Result, XmlSession,
};
use grantry_core::{StoreError, Timestamp};

use crate::group_commit::{sqlite_err, GroupCommit};
use crate::sql::rows::{AccessRow, ListRow, OwnerRow, RefreshRow, TokenRow};
use crate::sql::xml_sessions::{self, XmlSessionRow};
use crate::sql::{api_keys, audit, data, events, naming_token, oauth1, tokens};
use crate::sqlite_read::InlineReaders;

/// Appends an audit record, or counts it on the event it merges with. The commit thread is
/// SQLite's one writer, so merges of one key never race.
fn insert_audit(conn: &Connection, a: &NewAudit) -> Result<()> {
    if let Some(window) = audit::merges(a) {
        let merged = conn
            .prepare_cached(audit::MERGE_AUDIT)
            .and_then(|mut st| {
                st.execute(named_params! {
                    "$1": a.org_id,
                    "$2": a.actor,
                    "$3": a.target,
                    "$4": a.at.0,
                    "$5": a.at.minus(window).0,
                })
            })
            .map_err(sqlite_err)?;
        if merged > 0 {
            return Ok(());
        }
    }
    conn.prepare_cached(audit::INSERT_AUDIT)
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

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get("id")?,
        nonce: r.get("nonce")?,
        scopes: r.get("scopes")?,
        issued_at: r.get("issued_at")?,
        expires_at: r.get("expires_at")?,
        kid: r.get("kid")?,
    })
}

fn list_row(r: &Row<'_>) -> rusqlite::Result<ListRow> {
    Ok(ListRow {
        id: r.get("id")?,
        name: r.get("name")?,
        size: r.get("size")?,
        created_at: r.get("created_at")?,
    })
}

fn refresh_row(r: &Row<'_>) -> rusqlite::Result<RefreshRow> {
    Ok(RefreshRow {
        id: r.get("r_id")?,
        scopes: r.get("r_scopes")?,
        created_at: r.get("r_created_at")?,
        rotated_at: r.get("r_rotated_at")?,
        family_id: r.get("r_family")?,
        access: AccessRow {
            id: r.get("id")?,
            org_id: r.get("org_id")?,
            app_id: r.get("app_id")?,
            user_id: r.get("user_id")?,
            created_by: r.get("created_by")?,
            scopes: r.get("scopes")?,
            created_at: r.get("created_at")?,
        },
        client_id: r.get("p_client_id")?,
        username: r.get("u_username")?,
    })
}

fn owner_row(r: &Row<'_>) -> rusqlite::Result<OwnerRow> {
    Ok(OwnerRow {
        org_id: r.get("org_id")?,
        app_id: r.get("app_id")?,
        user_id: r.get("user_id")?,
    })
}

fn newest_token(conn: &Connection, refresh: i64) -> Result<Option<AccessTokenRecord>> {
    conn.prepare_cached(tokens::NEWEST_TOKEN)
        .and_then(|mut st| {
            st.query_row(named_params! {"$1": refresh}, token_row)
                .optional()
        })
        .map(|t| t.map(AccessTokenRecord::from))
        .map_err(sqlite_err)
}

/// Takes the refresh token for a new access token; its account access and owner if both
/// are still live.
fn lock_refresh(conn: &Connection, refresh: i64, at: i64) -> Result<Option<(i64, OwnerRow)>> {
    let access: Option<i64> = conn
        .prepare_cached(tokens::LOCK_REFRESH)
        .and_then(|mut st| {
            st.query_row(named_params! {"$1": refresh, "$2": at}, |r| r.get(0))
                .optional()
        })
        .map_err(sqlite_err)?;
    let Some(access) = access else {
        return Ok(None);
    };
    let owner = conn
        .prepare_cached(tokens::ACCESS_OWNER)
        .and_then(|mut st| {
            st.query_row(named_params! {"$1": access}, owner_row)
                .optional()
        })
        .map_err(sqlite_err)?;
    Ok(owner.map(|o| (access, o)))
}

/// Issues `fresh` for `refresh` if its newest live token is still `expected`.
fn issue_if_unchanged(
    conn: &Connection,
    refresh: i64,
    expected: Option<i64>,
    fresh: NewAccessToken,
    audit: NewAudit,
) -> Result<Locked> {
    let Some((access, owner)) = lock_refresh(conn, refresh, fresh.issued_at.0)? else {
        return Ok(Locked::Revoked);
    };
    let newest = newest_token(conn, refresh)?;
    if newest.as_ref().map(|t| t.id) != expected {
        return Ok(Locked::Changed(newest));
    }
    let id: i64 = conn
        .prepare_cached(tokens::INSERT_REFRESHED_TOKEN)
        .and_then(|mut st| {
            st.query_row(
                named_params! {
                    "$1": owner.org_id, "$2": owner.user_id, "$3": owner.app_id,
                    "$4": access, "$5": refresh,
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

pub(crate) fn xml_session(
    reads: &InlineReaders,
    digest: &Digest,
    now: Timestamp,
    live_for: i64,
) -> Result<Option<XmlSession>> {
    let row = reads.read(|conn| {
        conn.prepare_cached(xml_sessions::XML_SESSION)?
            .query_row(
                named_params! {"$1": digest.as_bytes(), "$2": now.0, "$3": live_for},
                XmlSessionRow::from_rusqlite,
            )
            .optional()
    })?;
    row.map(XmlSession::try_from).transpose()
}

pub(crate) fn list_by_id(reads: &InlineReaders, org: OrgId, id: i64) -> Result<Option<List>> {
    let row = reads.read(|conn| {
        conn.prepare_cached(data::LIST_BY_ID)?
            .query_row(named_params! {"$1": org, "$2": id}, list_row)
            .optional()
    })?;
    Ok(row.map(List::from))
}

pub(crate) fn lists_of(reads: &InlineReaders, org: OrgId) -> Result<Vec<List>> {
    reads.read(|conn| {
        conn.prepare_cached(data::LISTS_OF_ORG)?
            .query_map(named_params! {"$1": org}, |r| list_row(r).map(List::from))?
            .collect()
    })
}

pub(crate) fn load_newest(
    reads: &InlineReaders,
    refresh: i64,
) -> Result<Option<AccessTokenRecord>> {
    let row = reads.read(|conn| {
        conn.prepare_cached(tokens::NEWEST_LIVE_TOKEN)?
            .query_row(named_params! {"$1": refresh}, token_row)
            .optional()
    })?;
    Ok(row.map(AccessTokenRecord::from))
}

pub(crate) fn load_refresh_token(
    reads: &InlineReaders,
    digest: &Digest,
) -> Result<Option<RefreshTokenRecord>> {
    let row = reads.read(|conn| {
        conn.prepare_cached(tokens::REFRESH_BY_DIGEST)?
            .query_row(named_params! {"$1": digest.as_bytes()}, refresh_row)
            .optional()
    })?;
    Ok(row.map(RefreshTokenRecord::from))
}

pub(crate) async fn insert_key_token(
    commits: &GroupCommit,
    key: i64,
    org: OrgId,
    user: UserId,
    token: NewAccessToken,
    audit: NewAudit,
) -> Result<i64> {
    commits
        .write(move |conn| {
            let id: i64 = conn
                .prepare_cached(api_keys::INSERT_KEY_TOKEN)
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
            insert_audit(conn, &naming_token(audit.clone(), id))?;
            Ok(id)
        })
        .await
}

pub(crate) async fn insert_event(commits: &GroupCommit, event: Event) -> Result<()> {
    commits
        .write(move |conn| {
            conn.prepare_cached(events::INSERT_EVENT)
                .and_then(|mut st| {
                    st.execute(named_params! {
                        "$1": event.transaction_id, "$2": event.org_id, "$3": event.user_id,
                        "$4": event.event_id, "$5": event.event_key,
                        "$6": serde_json::Value::Object(event.params.clone()).to_string(),
                        "$7": event.received_at.0,
                    })
                })
                .map_err(sqlite_err)?;
            Ok(())
        })
        .await
}

pub(crate) async fn insert_nonce(
    commits: &GroupCommit,
    app: i64,
    stamp: i64,
    nonce: String,
    expires_at: Timestamp,
) -> Result<bool> {
    commits
        .write(move |conn| {
            let n = conn
                .prepare_cached(oauth1::INSERT_NONCE)
                .and_then(|mut st| {
                    st.execute(named_params! {
                        "$1": app, "$2": stamp, "$3": &nonce, "$4": expires_at.0,
                    })
                })
                .map_err(sqlite_err)?;
            Ok(n == 1)
        })
        .await
}

pub(crate) async fn insert_audit_event(commits: &GroupCommit, audit: NewAudit) -> Result<()> {
    commits.write(move |conn| insert_audit(conn, &audit)).await
}

pub(crate) async fn mark_used(commits: &GroupCommit, token: i64, audit: NewAudit) -> Result<()> {
    commits
        .write(move |conn| {
            let n = conn
                .prepare_cached(tokens::MARK_USED)
                .and_then(|mut st| st.execute(named_params! {"$1": token, "$2": audit.at.0}))
                .map_err(sqlite_err)?;
            if n == 1 {
                insert_audit(conn, &audit)?;
            }
            Ok(())
        })
        .await
}

/// `decide` on a token it may have asked to reuse: reusing nothing is a contract breach.
fn reused(newest: Option<AccessTokenRecord>) -> Result<RefreshOutcome> {
    newest
        .map(RefreshOutcome::Reused)
        .ok_or_else(|| StoreError::Backend("reuse decided without a token".into()))
}

/// The locked half of `refresh_access_token`, as a compare-and-set inside a batch: the write
/// issues only if the newest token is still the one `decide` was shown (`seen`); otherwise
/// `decide` is shown the newest one and, if it still says issue, the write is queued again.
/// SQLite runs one writer at a time, so this serializes like a lock.
pub(crate) async fn refresh_locked(
    commits: &GroupCommit,
    refresh: i64,
    decide: &DecideReissue<'_>,
    fresh: NewAccessToken,
    audit: NewAudit,
    seen: Option<i64>,
) -> Result<RefreshOutcome> {
    if seen.is_none() {
        // The read saw no token; `decide` is shown that too before anything is written.
        match decide(None) {
            Reissue::Issue => {}
            Reissue::Reject { retry_at } => return Ok(RefreshOutcome::Rejected { retry_at }),
            Reissue::Reuse => return reused(None),
        }
    }
    let mut expected = seen;
    loop {
        let (f, a) = (fresh.clone(), audit.clone());
        let locked = commits
            .write(move |conn| issue_if_unchanged(conn, refresh, expected, f.clone(), a.clone()))
            .await?;
        match locked {
            Locked::Revoked => return Ok(RefreshOutcome::Revoked),
            Locked::Issued(t) => return Ok(RefreshOutcome::Issued(t)),
            Locked::Changed(newest) => match decide(newest.as_ref()) {
                Reissue::Issue => expected = newest.map(|t| t.id),
                Reissue::Reject { retry_at } => return Ok(RefreshOutcome::Rejected { retry_at }),
                Reissue::Reuse => return reused(newest),
            },
        }
    }
}
