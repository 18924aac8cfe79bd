//! Errors of the storage layer, in domain words.

/// What a storage contract ([`crate::store`]) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (the name says which thing already exists).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A referenced row does not exist (or is not visible to the caller's org).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change would take a stored thing past one of its limits (a contact's columns); the
    /// text says which, and may be shown to the client.
    #[error("{0}")]
    Limit(String),
    /// The database failed; the text is for logs, never for clients.
    #[error("storage failure: {0}")]
    Backend(String),
    /// The database cannot be reached or cannot take a change now (the connection is lost,
    /// the server is shutting down or read-only, the disk is full, the file is locked): the
    /// request changed nothing and may be retried (answered 503 with `Retry-After`). The text
    /// is for logs, never for clients.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// What a 503 for an unavailable database tells the client to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

impl StoreError {
    /// Whether the failure is the database being unavailable rather than a fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
