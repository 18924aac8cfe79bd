//! Failed authentications per subject ([`grantry_core::store::LockoutStore`]).

/// Counts one failure: a count whose last failure is before `$3` starts again at one (and
/// its lock is forgotten).
pub(crate) const COUNT_FAILURE: &str = "INSERT INTO auth_failures \
    (subject, failures, last_failure, locked_until) VALUES ($1, 1, $2, NULL) \
    ON CONFLICT (subject) DO UPDATE SET \
    failures = CASE WHEN auth_failures.last_failure < $3 THEN 1 ELSE auth_failures.failures + 1 END, \
    locked_until = CASE WHEN auth_failures.last_failure < $3 THEN NULL ELSE auth_failures.locked_until END, \
    last_failure = $2 \
    RETURNING failures";

/// Locks a subject until `$2`, keeping a later lock.
pub(crate) const LOCK_SUBJECT: &str = "UPDATE auth_failures SET locked_until = \
    CASE WHEN locked_until IS NULL OR locked_until < $2 THEN $2 ELSE locked_until END \
    WHERE subject = $1 RETURNING failures, locked_until";

pub(crate) const CLEAR_FAILURES: &str = "DELETE FROM auth_failures WHERE subject = $1";

pub(crate) const ACTIVE_LOCKOUTS: &str =
    "SELECT subject, locked_until FROM auth_failures WHERE locked_until > $1";

pub(crate) const PURGE_FAILURES: &str = "DELETE FROM auth_failures \
    WHERE last_failure < $1 AND (locked_until IS NULL OR locked_until < $1)";

/// Implements [`grantry_core::store::LockoutStore`] for a [`super::Backend`].
macro_rules! impl_lockout_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::store::{FailureCount, LockoutStore, Result};
            use grantry_core::Timestamp;

            use $crate::sql::lockouts::*;
            use $crate::sql::{backend_err, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            #[async_trait]
            impl LockoutStore for $store {
                async fn count_failure(
                    &self,
                    subject: &str,
                    now: Timestamp,
                    forget_before: Timestamp,
                ) -> Result<u32> {
                    let mut tx = self.begin_write().await?;
                    let failures: i64 = sqlx::query_scalar(COUNT_FAILURE)
                        .bind(subject)
                        .bind(now.0)
                        .bind(forget_before.0)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(u32::try_from(failures).unwrap_or(u32::MAX))
                }

                async fn lock_subject(
                    &self,
                    subject: &str,
                    until: Timestamp,
                ) -> Result<FailureCount> {
                    let mut tx = self.begin_write().await?;
                    let row: Option<(i64, Option<i64>)> = sqlx::query_as(LOCK_SUBJECT)
                        .bind(subject)
                        .bind(until.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await?;
                    let (failures, locked_until) = row.unwrap_or((0, None));
                    Ok(FailureCount {
                        failures: u32::try_from(failures).unwrap_or(u32::MAX),
                        locked_until: locked_until.map(Timestamp),
                    })
                }

                async fn clear_failures(&self, subject: &str) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(CLEAR_FAILURES)
                        .bind(subject)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await
                }

                async fn active_lockouts(
                    &self,
                    now: Timestamp,
                ) -> Result<Vec<(String, Timestamp)>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(ACTIVE_LOCKOUTS)
                        .bind(now.0)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(rows.into_iter().map(|(s, t)| (s, Timestamp(t))).collect())
                }

                async fn purge_failures(&self, before: Timestamp) -> Result<u64> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(PURGE_FAILURES)
                        .bind(before.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend_err)?;
                    Db::commit(tx, self.caches()).await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}

pub(crate) use impl_lockout_store;
