//! The RS256 keys that sign JWT access tokens ([`grantry_core::store::SigningKeyStore`]).

pub(crate) const SIGNING_KEYS: &str = "SELECT kid, private_der, n, e, created_at, active_from \
    FROM signing_keys ORDER BY active_from, kid";

pub(crate) const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys \
    (kid, private_der, n, e, created_at, active_from) VALUES ($1, $2, $3, $4, $5, $6)";

/// Implements [`grantry_core::store::SigningKeyStore`] for a [`super::Backend`].
macro_rules! impl_signing_key_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::store::{Result, SigningKey, SigningKeyStore};

            use $crate::sql::rows::SigningKeyRow;
            use $crate::sql::signing_keys::*;
            use $crate::sql::{backend_err, conflict_or, Backend, SharedWrites};

            type Db = <$store as Backend>::Db;

            #[async_trait]
            impl SigningKeyStore for $store {
                async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
                    let rows = sqlx::query_as::<_, SigningKeyRow>(SIGNING_KEYS)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    Ok(rows.into_iter().map(SigningKey::from).collect())
                }

                async fn add_signing_key(&self, key: &SigningKey) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(INSERT_SIGNING_KEY)
                        .bind(&key.kid)
                        .bind(&key.private_der)
                        .bind(&key.n)
                        .bind(&key.e)
                        .bind(key.created_at.0)
                        .bind(key.active_from.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(conflict_or("signing key"))?;
                    Db::commit(tx, self.caches()).await
                }
            }
        };
    };
}

pub(crate) use impl_signing_key_store;
