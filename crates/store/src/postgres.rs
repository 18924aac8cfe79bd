//! The PostgreSQL backend, for when one machine is not enough: any number of `grantry serve`
//! instances share one database. Serialization points (the re-issue window) take row locks.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Postgres;

use grantry_core::StoreError;

use crate::cache::{confirm, Caches, EPOCH_SQL, POLL_EVERY};
use crate::common::backend_err;

/// The channel the authorization-epoch triggers notify (migration 0005).
const CHANNEL: &str = "grantry_auth";

/// grantry's store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    caches: Arc<Caches>,
}

impl PgStore {
    /// Connects to `url` and runs migrations (under PostgreSQL's advisory lock, so several
    /// instances may start at once).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("cannot connect to {}: {e}", crate::redact(url)))
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", crate::redact(url))))?;
        let caches = Caches::new();
        // Listen before the first confirmation, so no change can fall between the two.
        let listener = match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN {CHANNEL} failed; relying on polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a LISTEN connection; relying on polling");
                None
            }
        };
        confirm(&caches, sqlx::query_scalar(EPOCH_SQL).fetch_one(&pool))
            .await
            .map_err(backend_err)?;
        tokio::spawn(watch(pool.clone(), listener, Arc::downgrade(&caches)));
        Ok(PgStore { pool, caches })
    }

    fn caches(&self) -> &Caches {
        &self.caches
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(backend_err)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Keeps the cache honest (see [`crate::cache`]): drops it on every `grantry_auth`
/// notification, and reads the epoch every [`POLL_EVERY`] as the guarantee, until the store is
/// closed or dropped.
async fn watch(pool: PgPool, mut listener: Option<PgListener>, caches: Weak<Caches>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let notified = async {
            match listener.as_mut() {
                // `recv` reconnects by itself; an error here is worth one log line.
                Some(l) => l.try_recv().await.map(|n| n.is_some()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = notified => {
                if pool.is_closed() {
                    return;
                }
                let Some(caches) = caches.upgrade() else { return };
                match n {
                    Ok(_) => caches.clear(),
                    Err(e) => {
                        caches.clear();
                        tracing::warn!(error = %e, "LISTEN {CHANNEL} connection lost; reconnecting");
                        drop(caches);
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }
            _ = tick.tick() => {
                if pool.is_closed() {
                    return;
                }
                let Some(caches) = caches.upgrade() else { return };
                match confirm(&caches, sqlx::query_scalar(EPOCH_SQL).fetch_one(&pool)).await {
                    Ok(()) => {}
                    Err(_) if pool.is_closed() => return,
                    Err(e) => tracing::warn!(error = %e, "cannot read the authorization epoch; credential lookups bypass the cache until it can"),
                }
            }
        }
    }
}

crate::common::impl_store!(PgStore, sqlx::Postgres);

/// `INSERT_KEY_TOKEN` and its audit record (whose detail gains the token's id, as
/// `common::naming_token` does) in one statement.
const INSERT_KEY_TOKEN_WITH_AUDIT: &str = "WITH t AS ( \
    INSERT INTO access_tokens (org_id, user_id, api_key_id, digest, nonce, scopes, issued_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id), \
    a AS (INSERT INTO audit_events (org_id, at, actor, action, target, detail) \
    SELECT $9, $10, $11, $12, $13, \
    CASE WHEN jsonb_typeof($14::jsonb) = 'object' \
    THEN ($14::jsonb || jsonb_build_object('token', t.id))::text ELSE $14 END FROM t) \
    SELECT id FROM t";

// The rows that only PostgreSQL reads through sqlx (SQLite reads them with rusqlite).

fn token_row(
    r: &sqlx::postgres::PgRow,
) -> Result<grantry_core::model::AccessTokenRecord, StoreError> {
    use sqlx::Row;
    Ok(grantry_core::model::AccessTokenRecord {
        id: r.try_get("id").map_err(backend_err)?,
        nonce: r.try_get("nonce").map_err(backend_err)?,
        scopes: grantry_core::GrantSet::from_bits(r.try_get("scopes").map_err(backend_err)?),
        issued_at: grantry_core::Timestamp(r.try_get("issued_at").map_err(backend_err)?),
        expires_at: grantry_core::Timestamp(r.try_get("expires_at").map_err(backend_err)?),
        kid: r.try_get("kid").map_err(backend_err)?,
    })
}

fn list_row(r: &sqlx::postgres::PgRow) -> Result<grantry_core::model::List, StoreError> {
    use sqlx::Row;
    Ok(grantry_core::model::List {
        id: r.try_get("id").map_err(backend_err)?,
        name: r.try_get("name").map_err(backend_err)?,
        size: r.try_get("size").map_err(backend_err)?,
        created_at: grantry_core::Timestamp(r.try_get("created_at").map_err(backend_err)?),
    })
}

/// The hot writes: on PostgreSQL each is a transaction of its own (the server groups
/// concurrent commits into one WAL flush by itself).
impl PgStore {
    async fn load_refresh_token(
        &self,
        digest: &grantry_core::credential::Digest,
    ) -> Result<Option<grantry_core::store::RefreshTokenRecord>, StoreError> {
        use sqlx::Row;
        let Some(r) = sqlx::query(crate::common::REFRESH_BY_DIGEST)
            .bind(digest.as_bytes())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?
        else {
            return Ok(None);
        };
        Ok(Some(grantry_core::store::RefreshTokenRecord {
            id: r.try_get("r_id").map_err(backend_err)?,
            access: rows::access(&r)?,
            scopes: grantry_core::GrantSet::from_bits(r.try_get("r_scopes").map_err(backend_err)?),
            created_at: grantry_core::Timestamp(r.try_get("r_created_at").map_err(backend_err)?),
            rotated_at: r
                .try_get::<Option<i64>, _>("r_rotated_at")
                .map_err(backend_err)?
                .map(grantry_core::Timestamp),
            family_id: r.try_get("r_family").map_err(backend_err)?,
            client_id: r.try_get("p_client_id").map_err(backend_err)?,
            username: r.try_get("u_username").map_err(backend_err)?,
        }))
    }

    async fn load_newest(
        &self,
        refresh: i64,
    ) -> Result<Option<grantry_core::model::AccessTokenRecord>, StoreError> {
        sqlx::query(crate::common::NEWEST_LIVE_TOKEN)
            .bind(refresh)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?
            .map(|r| token_row(&r))
            .transpose()
    }

    async fn lists_of(&self, org: i64) -> Result<Vec<grantry_core::model::List>, StoreError> {
        let rows = sqlx::query(crate::common::LISTS_OF_ORG)
            .bind(org)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(list_row).collect()
    }

    async fn list_by_id(
        &self,
        org: i64,
        id: i64,
    ) -> Result<Option<grantry_core::model::List>, StoreError> {
        sqlx::query(crate::common::LIST_BY_ID)
            .bind(org)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?
            .map(|r| list_row(&r))
            .transpose()
    }

    /// The token and its audit record in one statement (one round trip, atomic on its own).
    async fn insert_key_token(
        &self,
        key: i64,
        org: i64,
        user: i64,
        token: grantry_core::store::NewAccessToken,
        audit: grantry_core::store::audit::NewAudit,
    ) -> Result<i64, StoreError> {
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
            .fetch_one(&self.pool)
            .await
            .map_err(backend_err)
    }

    async fn insert_event(&self, event: grantry_core::model::Event) -> Result<(), StoreError> {
        sqlx::query(crate::common::INSERT_EVENT)
            .bind(&event.transaction_id)
            .bind(event.org_id)
            .bind(event.user_id)
            .bind(&event.event_id)
            .bind(&event.event_key)
            .bind(serde_json::Value::Object(event.params).to_string())
            .bind(event.received_at.0)
            .execute(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn insert_audit_event(
        &self,
        audit: grantry_core::store::audit::NewAudit,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend_err)?;
        insert_audit(&mut conn, &audit).await
    }

    async fn mark_used(
        &self,
        token: i64,
        audit: grantry_core::store::audit::NewAudit,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(crate::common::MARK_USED)
            .bind(token)
            .bind(audit.at.0)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?
            .rows_affected();
        if n == 1 {
            insert_audit(&mut tx, &audit).await?;
        }
        tx.commit().await.map_err(backend_err)
    }

    /// The locked half of `refresh_access_token`: the UPDATE takes the refresh token's row
    /// lock, serializing concurrent refreshes of it, and `decide` sees the newest token under
    /// that lock.
    async fn refresh_locked(
        &self,
        refresh: i64,
        decide: &grantry_core::store::DecideReissue<'_>,
        fresh: grantry_core::store::NewAccessToken,
        audit: grantry_core::store::audit::NewAudit,
        _seen: Option<i64>,
    ) -> Result<grantry_core::store::RefreshOutcome, StoreError> {
        use grantry_core::store::{RefreshOutcome, Reissue};
        use sqlx::Row;
        let mut tx = self.begin_write().await?;
        let access: Option<i64> = sqlx::query_scalar(crate::common::LOCK_REFRESH)
            .bind(refresh)
            .bind(fresh.issued_at.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?;
        let Some(access) = access else {
            return Ok(RefreshOutcome::Revoked);
        };
        let Some(owner) = sqlx::query(crate::common::ACCESS_OWNER)
            .bind(access)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?
        else {
            return Ok(RefreshOutcome::Revoked);
        };
        let newest = sqlx::query(crate::common::NEWEST_TOKEN)
            .bind(refresh)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?
            .map(|r| token_row(&r))
            .transpose()?;
        match decide(newest.as_ref()) {
            Reissue::Reuse => {
                tx.commit().await.map_err(backend_err)?;
                newest
                    .map(RefreshOutcome::Reused)
                    .ok_or_else(|| backend_err("reuse decided without a token"))
            }
            Reissue::Reject { retry_at } => {
                tx.commit().await.map_err(backend_err)?;
                Ok(RefreshOutcome::Rejected { retry_at })
            }
            Reissue::Issue => {
                let id: i64 = sqlx::query_scalar(crate::common::INSERT_REFRESHED_TOKEN)
                    .bind(owner.try_get::<i64, _>("org_id").map_err(backend_err)?)
                    .bind(owner.try_get::<i64, _>("user_id").map_err(backend_err)?)
                    .bind(owner.try_get::<i64, _>("app_id").map_err(backend_err)?)
                    .bind(access)
                    .bind(refresh)
                    .bind(fresh.digest.as_bytes())
                    .bind(&fresh.nonce)
                    .bind(fresh.scopes.bits())
                    .bind(fresh.issued_at.0)
                    .bind(fresh.expires_at.0)
                    .bind(&fresh.kid)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                insert_audit(&mut tx, &crate::common::naming_token(audit, id)).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(RefreshOutcome::Issued(fresh.stored_as(id)))
            }
        }
    }
}
