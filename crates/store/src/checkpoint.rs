//! WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs on the
//! connection whose commit crossed the threshold (1,000 pages by default), which on the
//! embedded backend is nearly always the commit thread: its batch then waits for the pages to
//! be copied into the database file and for that file's sync, the slowest step of all (about
//! 12 ms under load, against 0.5–1 ms for the WAL's own sync). Here the commit thread only
//! wakes this thread; it waits [`EVERY`] so that a page written many times in between is
//! copied once, then runs a `PASSIVE` checkpoint, which never blocks the writer nor the
//! readers.
//!
//! The WAL starts again from its beginning only when a write transaction begins while every
//! frame is copied, which under steady load never happens by itself: a passive checkpoint
//! always finds a commit or two newer than what it copied. So once the WAL holds
//! [`RESTART_FRAMES`], this thread runs at once and the commit thread, between two batches,
//! copies the frames committed since, and its next transaction starts the WAL over. That copy
//! and the database file's sync still stall the commit thread (10–50 ms measured under load),
//! so the threshold is high: the stall comes about once every 1.5 s at 10,000 tokens a second,
//! and the WAL file stays under 64 MiB. The writers keep an automatic checkpoint as a backstop
//! at [`BACKSTOP_PAGES`] (docs/architecture.md, "Group commit").

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;

use grantry_core::StoreError;

use crate::group_commit::sqlite_err;

/// How long after a commit the checkpoint runs, gathering the commits in between.
const EVERY: Duration = Duration::from_millis(100);

/// From this many frames in the WAL on, the commit thread starts it over (see above).
const RESTART_FRAMES: i64 = 16_000;

/// The writers' own automatic checkpoint, in WAL pages (160 MiB of 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 40_000;

/// What the last checkpoint of this thread found.
#[derive(Debug, Default)]
struct Seen {
    /// Frames in the WAL when it ended.
    frames: AtomicI64,
    /// Set when it copied every frame; the commit thread takes it.
    caught_up: AtomicBool,
}

/// Wakes the checkpoint thread; dropping the last one ends it after a final checkpoint.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    hurry: mpsc::SyncSender<()>,
    seen: Arc<Seen>,
}

impl Checkpointer {
    /// Opens the thread's own connection to `path` and starts the thread.
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = open(path)?;
        let (wake, woken) = mpsc::sync_channel(1);
        let (hurry, hurried) = mpsc::sync_channel(1);
        let seen = Arc::new(Seen::default());
        let theirs = seen.clone();
        std::thread::Builder::new()
            .name("grantry-checkpoint".into())
            .spawn(move || run(conn, woken, hurried, theirs))
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { wake, hurry, seen })
    }

    /// Something was committed on `conn` (the commit thread's connection): a checkpoint is
    /// due within [`EVERY`], and if the WAL is long and this thread has just copied all of it
    /// but the last few commits, those are copied here so that the next transaction starts
    /// the WAL over. Never blocks on this thread.
    pub fn committed(&self, conn: &Connection) {
        let _ = self.wake.try_send(());
        if self.seen.frames.load(SeqCst) < RESTART_FRAMES {
            return;
        }
        if !self.seen.caught_up.swap(false, SeqCst) {
            let _ = self.hurry.try_send(());
            return;
        }
        if let Ok((frames, copied)) = checkpoint(conn, "commit") {
            // Everything copied: the next transaction starts the WAL over.
            self.seen
                .frames
                .store(if copied >= frames { 0 } else { frames }, SeqCst);
        }
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
        .map_err(sqlite_err)?;
    Ok(conn)
}

fn run(conn: Connection, woken: mpsc::Receiver<()>, hurried: mpsc::Receiver<()>, seen: Arc<Seen>) {
    while woken.recv().is_ok() {
        // EVERY, or less when the commit thread asks for a copy of a long WAL.
        let _ = hurried.recv_timeout(EVERY);
        while woken.try_recv().is_ok() {}
        match checkpoint(&conn, "checkpoint") {
            Ok((frames, copied)) => {
                seen.frames.store(frames, SeqCst);
                seen.caught_up.store(frames > 0 && copied >= frames, SeqCst);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot checkpoint the WAL; the next commit retries")
            }
        }
    }
    let _ = checkpoint(&conn, "checkpoint");
}

/// One `PASSIVE` checkpoint on `thread`, timed for `GET /metrics`: the frames in the WAL and
/// how many of them are copied. A failure is left to the next one: the WAL keeps every committed page
/// until some checkpoint has copied it.
#[allow(
    clippy::disallowed_methods,
    reason = "checkpoint time is measured in monotonic time for metrics only; no protocol decision reads it"
)]
fn checkpoint(conn: &Connection, thread: &'static str) -> rusqlite::Result<(i64, i64)> {
    let started = std::time::Instant::now();
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })?;
    metrics::histogram!("grantry_checkpoint_seconds", "thread" => thread)
        .record(started.elapsed().as_secs_f64());
    Ok(done)
}
