//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs on the
//! connection whose commit crossed the threshold (1,000 pages by default), which on the
//! embedded backend is nearly always the commit thread: its batch then waits for the pages to
//! be copied into the database file and for that file's fsync, the slowest step of all
//! (about 12 ms under load, against 0.5–1 ms for the WAL's own fsync). Here the commit thread
//! only wakes this thread; it waits [`EVERY`] so that a page written many times in between is
//! copied once, then runs a `PASSIVE` checkpoint, which never blocks the writer nor the
//! readers. The writers keep an automatic checkpoint as a backstop at [`BACKSTOP_PAGES`], for
//! a WAL this thread cannot keep small (docs/architecture.md, "Group commit").

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use grantry_core::StoreError;

use crate::group_commit::sqlite_err;

/// How long after a commit the checkpoint runs, gathering the commits in between.
const EVERY: Duration = Duration::from_millis(100);

/// The writers' own automatic checkpoint, in WAL pages (40 MiB of 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 10_000;

/// Wakes the checkpoint thread; dropping the last one ends it after a final checkpoint.
#[derive(Clone, Debug)]
pub(crate) struct Checkpointer {
    wake: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Opens the thread's own connection to `path` and starts the thread.
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite_err)?;
        conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
            .map_err(sqlite_err)?;
        let (wake, woken) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("grantry-checkpoint".into())
            .spawn(move || run(conn, woken))
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { wake })
    }

    /// Something was committed: a checkpoint is due within [`EVERY`]. Never blocks.
    pub fn committed(&self) {
        let _ = self.wake.try_send(());
    }
}

fn run(conn: Connection, woken: mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        std::thread::sleep(EVERY);
        while woken.try_recv().is_ok() {}
        checkpoint(&conn);
    }
    checkpoint(&conn);
}

/// One `PASSIVE` checkpoint, timed for `GET /metrics`. A failure is logged and left to the
/// next one: the WAL keeps every committed page until some checkpoint has copied it.
#[allow(
    clippy::disallowed_methods,
    reason = "checkpoint time is measured in monotonic time for metrics only; no protocol decision reads it"
)]
fn checkpoint(conn: &Connection) {
    let started = std::time::Instant::now();
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match done {
        Ok((log, copied)) => {
            metrics::histogram!("grantry_checkpoint_seconds")
                .record(started.elapsed().as_secs_f64());
            tracing::trace!(log, copied, "checkpoint");
        }
        Err(e) => tracing::warn!(error = %e, "cannot checkpoint the WAL; the next commit retries"),
    }
}
