//! sqlx implementations of [`grantry_core::Store`]: SQLite (the embedded default) and
//! PostgreSQL. Both share one body of SQL (written with `$N` placeholders, which both accept,
//! one module per storage concern under `sql/`) and differ in how they connect, migrate, open
//! a write transaction and run their hot paths; each has its own migrations folder. The
//! backend is picked by the URL's scheme.

use std::sync::Arc;

use grantry_core::{Store, StoreError};

mod cache;
mod group_commit;
pub mod postgres;
mod postgres_hot;
mod sql;
pub mod sqlite;
mod sqlite_hot;
mod sqlite_read;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Opens the store named by `url`: `sqlite://<path>` (created if missing) or
/// `postgres://...`. Runs pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(StoreError::Backend(format!(
            "unsupported database URL {}: use sqlite://<path> or postgres://user@host/db",
            redact(url)
        )))
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
