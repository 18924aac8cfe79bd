//! Purging expired state ([`grantry_core::store::RetentionStore`]). Each statement deletes at
//! most `$2` rows (`$1` is the limit time) and is run in a transaction of its own, repeatedly,
//! until a batch comes back short.

/// PostgreSQL: the sweeper's lock, held until the batch's transaction ends; `false` when
/// another instance holds it.
pub(crate) const SWEEP_LOCK_PG: &str = "SELECT pg_try_advisory_xact_lock(1735549797, 0)";

/// Audit events recorded before `$1`, in the order they were recorded, up to the first one
/// recorded at or after `$1` (one that an instance with a slower clock recorded after it waits
/// for it): the table every audited write appends to needs no index on time for this, and the
/// scan stops at the first event kept (docs/architecture.md, the sweeper).
pub(crate) const PURGE_AUDIT: &str = "DELETE FROM audit_events WHERE id IN \
    (SELECT id FROM audit_events WHERE at < $1 AND id < COALESCE(\
    (SELECT id FROM audit_events WHERE at >= $1 ORDER BY id LIMIT 1), 9223372036854775807) \
    ORDER BY id LIMIT $2)";

/// Authorization codes that expired unspent before `$1`, or spent before `$3`.
pub(crate) const PURGE_CODES: &str = "DELETE FROM auth_codes WHERE id IN \
    (SELECT id FROM auth_codes WHERE (used_at IS NULL AND expires_at < $1) \
    OR expires_at < $3 ORDER BY id LIMIT $2)";

/// Browser sessions that expired before `$1`.
pub(crate) const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE id IN \
    (SELECT id FROM sessions WHERE expires_at < $1 ORDER BY id LIMIT $2)";

/// XML API `Login` sessions whose idle limit (as of their start) passed before `$1`.
pub(crate) const PURGE_XML_SESSIONS: &str = "DELETE FROM xml_sessions WHERE id IN \
    (SELECT id FROM xml_sessions WHERE last_seen_at + live_for < $1 ORDER BY id LIMIT $2)";

/// Access tokens that expired before `$1`, in the order they were issued, up to the first
/// one still live: a token with a shorter lifetime than one issued before it is purged once
/// that one has expired too, so the hot table of issuance needs no index on expiry.
pub(crate) const PURGE_ACCESS_TOKENS: &str = "DELETE FROM access_tokens WHERE id IN \
    (SELECT id FROM access_tokens WHERE expires_at < $1 AND id < COALESCE(\
    (SELECT id FROM access_tokens WHERE expires_at >= $1 ORDER BY id LIMIT 1), \
    9223372036854775807) ORDER BY id LIMIT $2)";

/// Client secrets whose overlap ended before `$1`.
pub(crate) const PURGE_CLIENT_SECRETS: &str = "DELETE FROM client_secrets WHERE id IN \
    (SELECT id FROM client_secrets WHERE expires_at IS NOT NULL AND expires_at < $1 \
    ORDER BY id LIMIT $2)";

/// OAuth 1.0a temporary credentials that expired before `$1` (spent or not: once expired
/// they can be neither authorized nor exchanged).
pub(crate) const PURGE_REQUEST_TOKENS: &str = "DELETE FROM oauth1_request_tokens WHERE id IN \
    (SELECT id FROM oauth1_request_tokens WHERE expires_at < $1 ORDER BY id LIMIT $2)";

/// OAuth 1.0a nonces whose timestamp left the window before `$1`: a request carrying one is
/// refused for its timestamp, so it need not be remembered.
pub(crate) const PURGE_NONCES: &str = "DELETE FROM oauth1_nonces WHERE (app_id, stamp, nonce) IN \
    (SELECT app_id, stamp, nonce FROM oauth1_nonces WHERE expires_at < $1 LIMIT $2)";

/// Idempotency keys of creates made before `$1`.
pub(crate) const PURGE_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE id IN \
    (SELECT id FROM idempotency_keys WHERE created_at < $1 ORDER BY id LIMIT $2)";

/// Implements [`grantry_core::store::RetentionStore`] for a [`super::Backend`].
macro_rules! impl_retention_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::admin::idempotency::KEPT_FOR;
            use grantry_core::store::retention::{SPENT_CODE_MEMORY, SWEEP_BATCH};
            use grantry_core::store::{Result, RetentionStore, SweepReport};
            use grantry_core::Timestamp;

            use $crate::sql::retention::*;
            use $crate::sql::{backend_err, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            /// What one batch found.
            enum Batch {
                Deleted(u64),
                Busy,
            }

            impl $store {
                /// Deletes one batch with `statement` in a transaction of its own, under the
                /// sweeper's lock.
                async fn purge_batch(
                    &self,
                    statement: &'static str,
                    limit: Timestamp,
                    spent_limit: Timestamp,
                ) -> Result<Batch> {
                    let mut tx = self.begin_write().await?;
                    if !<Db as SharedWrites>::try_sweep_lock(&mut tx).await? {
                        return Ok(Batch::Busy);
                    }
                    let mut query = sqlx::query(statement).bind(limit.0).bind(SWEEP_BATCH);
                    if statement == PURGE_CODES {
                        query = query.bind(spent_limit.0);
                    }
                    let deleted = query
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?
                        .rows_affected();
                    <Db as SharedWrites>::commit(tx, self.caches()).await?;
                    Ok(Batch::Deleted(deleted))
                }
            }

            #[async_trait]
            impl RetentionStore for $store {
                async fn sweep(
                    &self,
                    now: Timestamp,
                    audit_before: Timestamp,
                ) -> Result<Option<SweepReport>> {
                    let spent_limit = now.minus(SPENT_CODE_MEMORY);
                    let kinds = [
                        (PURGE_AUDIT, audit_before),
                        (PURGE_CODES, now),
                        (PURGE_SESSIONS, now),
                        (PURGE_ACCESS_TOKENS, now),
                        (PURGE_CLIENT_SECRETS, now),
                        (PURGE_REQUEST_TOKENS, now),
                        (PURGE_NONCES, now),
                        (PURGE_XML_SESSIONS, now),
                        (PURGE_IDEMPOTENCY_KEYS, now.minus(KEPT_FOR)),
                    ];
                    let mut counts = [0u64; 9];
                    let mut first = true;
                    'kinds: for (i, (statement, limit)) in kinds.into_iter().enumerate() {
                        loop {
                            match self.purge_batch(statement, limit, spent_limit).await? {
                                Batch::Busy if first => return Ok(None),
                                Batch::Busy => break 'kinds,
                                Batch::Deleted(n) => {
                                    first = false;
                                    counts[i] += n;
                                    if n < SWEEP_BATCH as u64 {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    let [audit_events, auth_codes, sessions, access_tokens, client_secrets, oauth1_request_tokens, oauth1_nonces, xml_sessions, idempotency_keys] =
                        counts;
                    let report = SweepReport {
                        audit_events,
                        auth_codes,
                        sessions,
                        access_tokens,
                        client_secrets,
                        oauth1_request_tokens,
                        oauth1_nonces,
                        xml_sessions,
                        idempotency_keys,
                    };
                    Ok(Some(report))
                }
            }
        };
    };
}

pub(crate) use impl_retention_store;
