//! Point reads on SQLite answered on the calling thread. A read through sqlx's SQLite driver
//! is handed to the connection's own thread and back, which costs more than the read itself;
//! the reads on the protected APIs' hot path are point lookups of a few microseconds, so they
//! run here, on a small set of read-only connections, each behind a mutex.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use grantry_core::StoreError;

use crate::group_commit::sqlite_err;

pub(crate) struct InlineReaders {
    conns: Box<[Mutex<Connection>]>,
    next: AtomicUsize,
}

impl std::fmt::Debug for InlineReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReaders")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl InlineReaders {
    /// Opens `n` read-only connections to the database at `path`.
    pub fn open(path: &Path, n: usize) -> Result<InlineReaders, StoreError> {
        let conns = (0..n.max(1))
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(Duration::from_secs(10))?;
                c.set_prepared_statement_cache_capacity(32);
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()
            .map_err(sqlite_err)?;
        Ok(InlineReaders {
            conns: conns.into_boxed_slice(),
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `read` on a free connection (or waits for one).
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(conn) = self.conns[(start + i) % n].try_lock() {
                return read(&conn).map_err(sqlite_err);
            }
        }
        let conn = self.conns[start]
            .lock()
            .map_err(|_| StoreError::Backend("a read connection was poisoned".into()))?;
        read(&conn).map_err(sqlite_err)
    }
}
