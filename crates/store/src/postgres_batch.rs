//! Access tokens minted from API keys (`client_credentials`, the busiest durable write) are
//! inserted on PostgreSQL in batches: the requests that arrive while a batch is in flight
//! queue, and the next batch writes all of them, tokens and audit records, with one
//! statement over arrays (`INSERT ... SELECT FROM UNNEST(...)`) and one commit. A few batches
//! are in flight at once ([`WORKERS`]), so a lone request never waits behind a full one. No
//! answer leaves before the commit that holds its token. When a batch fails on something
//! other than the database being unavailable (a key deleted under it, say), each of its
//! tokens is written again on its own, so only the one at fault fails (docs/architecture.md,
//! "Group commit").

use std::sync::Arc;

use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};

use grantry_core::model::{OrgId, UserId};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{NewAccessToken, Result};
use grantry_core::StoreError;

use crate::postgres_hot::insert_key_token;
use crate::sql::backend_err;

/// Batches in flight at once: each holds one pooled connection while it runs.
const WORKERS: usize = 3;

/// Tokens per statement at most.
const MAX_BATCH: usize = 256;

/// Requests waiting for a batch at most; more wait to be queued.
const QUEUE: usize = 4096;

/// The tokens of a batch and their audit records (whose detail gains the token's id, as
/// `naming_token` does), matched by digest.
const INSERT_KEY_TOKENS: &str = "WITH i AS ( \
    SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[], \
    $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], \
    $12::text[], $13::text[], $14::text[]) \
    AS i(org_id, user_id, api_key_id, digest, nonce, scopes, issued_at, expires_at, \
    a_org, a_at, a_actor, a_action, a_target, a_detail)), \
    t AS (INSERT INTO access_tokens (org_id, user_id, api_key_id, digest, nonce, scopes, \
    issued_at, expires_at) \
    SELECT org_id, user_id, api_key_id, digest, nonce, scopes, issued_at, expires_at FROM i \
    RETURNING id, digest), \
    a AS (INSERT INTO audit_events (org_id, at, actor, action, target, detail) \
    SELECT i.a_org, i.a_at, i.a_actor, i.a_action, i.a_target, \
    CASE WHEN jsonb_typeof(i.a_detail::jsonb) = 'object' \
    THEN (i.a_detail::jsonb || jsonb_build_object('token', t.id))::text ELSE i.a_detail END \
    FROM i JOIN t ON t.digest = i.digest ORDER BY t.id) \
    SELECT id, digest FROM t";

struct Pending {
    key: i64,
    org: OrgId,
    user: UserId,
    token: NewAccessToken,
    audit: NewAudit,
    reply: oneshot::Sender<Result<i64>>,
}

/// The queue to the batching tasks.
#[derive(Clone, Debug)]
pub(crate) struct KeyTokens {
    queue: mpsc::Sender<Pending>,
}

impl KeyTokens {
    /// Starts the batching tasks on `pool`; they end when the last handle is dropped.
    pub fn start(pool: PgPool) -> KeyTokens {
        let (queue, pending) = mpsc::channel(QUEUE);
        let pending = Arc::new(Mutex::new(pending));
        for _ in 0..WORKERS {
            tokio::spawn(work(pool.clone(), pending.clone()));
        }
        KeyTokens { queue }
    }

    /// Stores `token`, minted from API key `key`, with `audit`; its id once committed.
    pub async fn insert(
        &self,
        key: i64,
        org: OrgId,
        user: UserId,
        token: NewAccessToken,
        audit: NewAudit,
    ) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key,
            org,
            user,
            token,
            audit,
            reply,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| StoreError::Backend("the token batching has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Backend("the token batching stopped before answering".into())
        })?
    }
}

async fn work(pool: PgPool, pending: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let batch = {
            let mut queue = pending.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            batch
        };
        run(&pool, batch).await;
    }
}

/// Writes `batch` and answers each of its requests.
async fn run(pool: &PgPool, batch: Vec<Pending>) {
    let outcome = if batch.len() == 1 {
        Err(None)
    } else {
        insert_batch(pool, &batch).await.map_err(Some)
    };
    match outcome {
        Ok(ids) => {
            for (p, id) in batch.into_iter().zip(ids) {
                let _ = p.reply.send(id);
            }
        }
        Err(Some(e)) if e.is_unavailable() => {
            for p in batch {
                let _ = p.reply.send(Err(StoreError::Unavailable(e.to_string())));
            }
        }
        // One at a time: a lone request, or a batch that failed on one of its tokens.
        Err(_) => {
            for p in batch {
                let out = insert_key_token(pool, p.key, p.org, p.user, p.token, p.audit).await;
                let _ = p.reply.send(out);
            }
        }
    }
}

/// The batch in one statement; each token's id, in the batch's order.
async fn insert_batch(
    pool: &PgPool,
    batch: &[Pending],
) -> std::result::Result<Vec<Result<i64>>, StoreError> {
    let column = |f: fn(&Pending) -> i64| batch.iter().map(f).collect::<Vec<i64>>();
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(INSERT_KEY_TOKENS)
        .bind(column(|p| p.org))
        .bind(column(|p| p.user))
        .bind(column(|p| p.key))
        .bind(
            batch
                .iter()
                .map(|p| p.token.digest.as_bytes().to_vec())
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|p| p.token.nonce.clone())
                .collect::<Vec<_>>(),
        )
        .bind(column(|p| p.token.scopes.bits()))
        .bind(column(|p| p.token.issued_at.0))
        .bind(column(|p| p.token.expires_at.0))
        .bind(
            batch
                .iter()
                .map(|p| p.audit.org_id)
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(column(|p| p.audit.at.0))
        .bind(
            batch
                .iter()
                .map(|p| p.audit.actor.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(batch.iter().map(|p| p.audit.action).collect::<Vec<_>>())
        .bind(
            batch
                .iter()
                .map(|p| p.audit.target.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|p| p.audit.detail.to_string())
                .collect::<Vec<_>>(),
        )
        .fetch_all(pool)
        .await
        .map_err(backend_err)?;
    let ids: std::collections::HashMap<Vec<u8>, i64> =
        rows.into_iter().map(|(id, digest)| (digest, id)).collect();
    Ok(batch
        .iter()
        .map(|p| {
            ids.get(p.token.digest.as_bytes())
                .copied()
                .ok_or_else(|| StoreError::Backend("a batched token was not stored".into()))
        })
        .collect())
}
