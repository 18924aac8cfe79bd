//! The hot reads and writes on PostgreSQL ([`crate::sql::Backend`]'s hot paths): each write is
//! a transaction of its own on the pool (the server groups concurrent commits into one WAL
//! flush by itself), and the re-issue window serializes on the refresh token's row lock.

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Postgres;

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, Event, List, OrgId, UserId};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    DecideReissue, NewAccessToken, RefreshOutcome, RefreshTokenRecord, Reissue, Result, XmlSession,
};
use grantry_core::Timestamp;

use crate::sql::rows::{ListRow, OwnerRow, RefreshRow, TokenRow};
use crate::sql::xml_sessions::{XmlSessionRow, XML_SESSION};
use crate::sql::{backend_err, data, events, naming_token, oauth1, tokens, SharedWrites};

/// `INSERT_KEY_TOKEN` and its audit record (whose detail gains the token's id, as
/// [`naming_token`] does) in one statement.
const INSERT_KEY_TOKEN_WITH_AUDIT: &str = "WITH t AS ( \
    INSERT INTO access_tokens (org_id, user_id, api_key_id, digest, nonce, scopes, \
    issued_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id), \
    a AS (INSERT INTO audit_events (org_id, at, actor, action, target, detail) \
    SELECT $9, $10, $11, $12, $13, \
    CASE WHEN jsonb_typeof($14::jsonb) = 'object' \
    THEN ($14::jsonb || jsonb_build_object('token', t.id))::text ELSE $14 END FROM t) \
    SELECT id FROM t";

pub(crate) async fn load_refresh_token(
    pool: &PgPool,
    digest: &Digest,
) -> Result<Option<RefreshTokenRecord>> {
    let row = sqlx::query_as::<_, RefreshRow>(tokens::REFRESH_BY_DIGEST)
        .bind(digest.as_bytes())
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    Ok(row.map(RefreshTokenRecord::from))
}

pub(crate) async fn load_newest(pool: &PgPool, refresh: i64) -> Result<Option<AccessTokenRecord>> {
    let row = sqlx::query_as::<_, TokenRow>(tokens::NEWEST_LIVE_TOKEN)
        .bind(refresh)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    Ok(row.map(AccessTokenRecord::from))
}

pub(crate) async fn lists_of(pool: &PgPool, org: OrgId) -> Result<Vec<List>> {
    let rows = sqlx::query_as::<_, ListRow>(data::LISTS_OF_ORG)
        .bind(org)
        .fetch_all(pool)
        .await
        .map_err(backend_err)?;
    Ok(rows.into_iter().map(List::from).collect())
}

pub(crate) async fn xml_session(
    pool: &PgPool,
    digest: &Digest,
    now: Timestamp,
    live_for: i64,
) -> Result<Option<XmlSession>> {
    sqlx::query_as::<_, XmlSessionRow>(XML_SESSION)
        .bind(digest.as_bytes())
        .bind(now.0)
        .bind(live_for)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?
        .map(XmlSession::try_from)
        .transpose()
}

pub(crate) async fn list_by_id(pool: &PgPool, org: OrgId, id: i64) -> Result<Option<List>> {
    let row = sqlx::query_as::<_, ListRow>(data::LIST_BY_ID)
        .bind(org)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(backend_err)?;
    Ok(row.map(List::from))
}

/// The token and its audit record in one statement (one round trip, atomic on its own).
pub(crate) async fn insert_key_token(
    pool: &PgPool,
    key: i64,
    org: OrgId,
    user: UserId,
    token: NewAccessToken,
    audit: NewAudit,
) -> Result<i64> {
    sqlx::query_scalar(INSERT_KEY_TOKEN_WITH_AUDIT)
        .bind(org)
        .bind(user)
        .bind(key)
        .bind(token.digest.as_bytes())
        .bind(&token.nonce)
        .bind(token.scopes.bits())
        .bind(token.issued_at.0)
        .bind(token.expires_at.0)
        .bind(audit.org_id)
        .bind(audit.at.0)
        .bind(&audit.actor)
        .bind(audit.action)
        .bind(&audit.target)
        .bind(audit.detail.to_string())
        .fetch_one(pool)
        .await
        .map_err(backend_err)
}

pub(crate) async fn insert_event(pool: &PgPool, event: Event) -> Result<()> {
    sqlx::query(events::INSERT_EVENT)
        .bind(&event.transaction_id)
        .bind(event.org_id)
        .bind(event.user_id)
        .bind(&event.event_id)
        .bind(&event.event_key)
        .bind(serde_json::Value::Object(event.params).to_string())
        .bind(event.received_at.0)
        .execute(pool)
        .await
        .map_err(backend_err)?;
    Ok(())
}

pub(crate) async fn insert_nonce(
    pool: &PgPool,
    app: i64,
    stamp: i64,
    nonce: String,
    expires_at: Timestamp,
) -> Result<bool> {
    let n = sqlx::query(oauth1::INSERT_NONCE)
        .bind(app)
        .bind(stamp)
        .bind(nonce)
        .bind(expires_at.0)
        .execute(pool)
        .await
        .map_err(backend_err)?
        .rows_affected();
    Ok(n == 1)
}

pub(crate) async fn insert_audit_event(pool: &PgPool, audit: NewAudit) -> Result<()> {
    if crate::sql::audit::merges(&audit).is_some() {
        // The merge lock lasts until the transaction ends.
        let mut tx = pool.begin().await.map_err(backend_err)?;
        Postgres::insert_audit(&mut tx, &audit).await?;
        return tx.commit().await.map_err(backend_err);
    }
    let mut conn = pool.acquire().await.map_err(backend_err)?;
    Postgres::insert_audit(&mut conn, &audit).await
}

pub(crate) async fn mark_used(pool: &PgPool, token: i64, audit: NewAudit) -> Result<()> {
    let mut tx = pool.begin().await.map_err(backend_err)?;
    let n = sqlx::query(tokens::MARK_USED)
        .bind(token)
        .bind(audit.at.0)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?
        .rows_affected();
    if n == 1 {
        Postgres::insert_audit(&mut tx, &audit).await?;
    }
    tx.commit().await.map_err(backend_err)
}

/// Takes the refresh token's row lock; its account access and owner if both are still live.
async fn lock_refresh(
    conn: &mut PgConnection,
    refresh: i64,
    at: i64,
) -> Result<Option<(i64, OwnerRow)>> {
    let access: Option<i64> = sqlx::query_scalar(tokens::LOCK_REFRESH)
        .bind(refresh)
        .bind(at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend_err)?;
    let Some(access) = access else {
        return Ok(None);
    };
    let owner = sqlx::query_as::<_, OwnerRow>(tokens::ACCESS_OWNER)
        .bind(access)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend_err)?;
    Ok(owner.map(|o| (access, o)))
}

async fn newest_token(conn: &mut PgConnection, refresh: i64) -> Result<Option<AccessTokenRecord>> {
    let row = sqlx::query_as::<_, TokenRow>(tokens::NEWEST_TOKEN)
        .bind(refresh)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend_err)?;
    Ok(row.map(AccessTokenRecord::from))
}

/// Inserts `fresh`, derived from `refresh` of account access `access`, with its audit record.
async fn insert_refreshed(
    conn: &mut PgConnection,
    (access, owner): (i64, OwnerRow),
    refresh: i64,
    fresh: &NewAccessToken,
    audit: NewAudit,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(tokens::INSERT_REFRESHED_TOKEN)
        .bind(owner.org_id)
        .bind(owner.user_id)
        .bind(owner.app_id)
        .bind(access)
        .bind(refresh)
        .bind(fresh.digest.as_bytes())
        .bind(&fresh.nonce)
        .bind(fresh.scopes.bits())
        .bind(fresh.issued_at.0)
        .bind(fresh.expires_at.0)
        .bind(&fresh.kid)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend_err)?;
    Postgres::insert_audit(conn, &naming_token(audit, id)).await?;
    Ok(id)
}

/// The locked half of `refresh_access_token`: the UPDATE takes the refresh token's row lock,
/// serializing concurrent refreshes of it, and `decide` sees the newest token under that lock.
pub(crate) async fn refresh_locked(
    pool: &PgPool,
    refresh: i64,
    decide: &DecideReissue<'_>,
    fresh: NewAccessToken,
    audit: NewAudit,
) -> Result<RefreshOutcome> {
    let mut tx = pool.begin().await.map_err(backend_err)?;
    let Some(owner) = lock_refresh(&mut tx, refresh, fresh.issued_at.0).await? else {
        return Ok(RefreshOutcome::Revoked);
    };
    let newest = newest_token(&mut tx, refresh).await?;
    let outcome = match decide(newest.as_ref()) {
        Reissue::Reuse => newest
            .map(RefreshOutcome::Reused)
            .ok_or_else(|| backend_err("reuse decided without a token")),
        Reissue::Reject { retry_at } => Ok(RefreshOutcome::Rejected { retry_at }),
        Reissue::Issue => {
            let id = insert_refreshed(&mut tx, owner, refresh, &fresh, audit).await?;
            Ok(RefreshOutcome::Issued(fresh.stored_as(id)))
        }
    };
    tx.commit().await.map_err(backend_err)?;
    outcome
}
