//! Group commit for the embedded SQLite backend: the writes on the hot paths (token issuance,
//! first use, audit records, Event API events) are queued to one thread that owns a
//! connection, runs every queued write in one transaction — run again each in a savepoint of
//! its own when one fails, so one failing write undoes only itself — and commits them with one
//! fsync
//! (`synchronous=FULL`). Nobody hears back before the commit that holds their write: an
//! acknowledged write is on disk.
//!
//! Batches form by themselves: while one commits, the next requests queue, and the thread
//! takes all of them at once. A lone request is committed at once, without waiting for
//! company.
//!
//! The store's other writes go through a sqlx pool of one connection. While that connection is
//! in use or awaited, the thread takes it for its batch too, so a steady stream of batches
//! cannot starve those writes of SQLite's lock.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sqlx::SqlitePool;
use tokio::sync::oneshot;

use grantry_core::StoreError;

use crate::checkpoint::{Checkpointer, BACKSTOP_PAGES};

/// Writes per transaction at most.
const MAX_BATCH: usize = 512;

/// The commit thread's page cache, in KiB when negative (SQLite's `cache_size`): 32 MiB.
const COMMIT_CACHE_KIB: i64 = -32_768;

type Output = Result<Box<dyn Any + Send>, StoreError>;

struct Job {
    /// Run again when another write of its batch failed (see [`commit_batch`]).
    run: Box<dyn FnMut(&Connection) -> Output + Send>,
    reply: oneshot::Sender<Output>,
}

/// The queue to the commit thread.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

pub(crate) fn sqlite_err(e: rusqlite::Error) -> StoreError {
    let unavailable = match &e {
        rusqlite::Error::SqliteFailure(f, _) => crate::sql::sqlite_unavailable(f.extended_code),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// `err` again for another waiter, its text after `what`, as unavailable as it was.
fn prefixed(err: &StoreError, what: &str) -> StoreError {
    match err {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{what}: {m}")),
        other => StoreError::Backend(format!("{what}: {other}")),
    }
}

impl GroupCommit {
    /// Opens the thread's connection to `path` and starts the thread. `gate` is the store's
    /// other write pool (see the module's notes).
    pub fn start(path: &Path, gate: SqlitePool) -> Result<GroupCommit, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite_err)?;
        conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
            .map_err(sqlite_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sqlite_err)?;
        // Token digests land at random places in their unique index: with a million live
        // tokens it spans tens of MiB, and each page not held here is read back per insert.
        conn.pragma_update(None, "cache_size", COMMIT_CACHE_KIB)
            .map_err(sqlite_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let checkpoints = Checkpointer::start(path)?;
        let runtime = tokio::runtime::Handle::current();
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("grantry-commit".into())
            .spawn(move || run(conn, jobs, gate, runtime, checkpoints))
            .map_err(|e| StoreError::Backend(format!("cannot start the commit thread: {e}")))?;
        Ok(GroupCommit { queue })
    }

    /// Runs `write` in the next batch and answers once that batch is committed. An error
    /// from `write` undoes `write` alone. `write` may run twice, the first run undone, when
    /// another write of its batch fails.
    pub async fn write<T, F>(&self, mut write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            run: Box::new(move |conn| write(conn).map(|v| Box::new(v) as Box<dyn Any + Send>)),
            reply,
        };
        self.queue
            .send(job)
            .map_err(|_| StoreError::Backend("the commit thread has stopped".into()))?;
        let out = answer.await.map_err(|_| {
            StoreError::Backend("the commit thread stopped before answering".into())
        })??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Backend("a write answered with the wrong type".into()))
    }
}

fn run(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    gate: SqlitePool,
    runtime: tokio::runtime::Handle,
    checkpoints: Checkpointer,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // The other write connection is taken only when something holds it or waits for it
        // (it is idle otherwise): then this batch waits its turn, and that writer's next
        // retry finds SQLite's lock free. A writer that takes it just after this look
        // meets SQLite's lock and retries until this batch has committed.
        let outcomes = if gate.num_idle() > 0 {
            measured(&conn, batch)
        } else {
            // Acquired and released inside the runtime, which the pool needs for both.
            runtime.block_on(async {
                let held = gate.acquire().await;
                let outcomes = measured(&conn, batch);
                drop(held);
                outcomes
            })
        };
        // Waking the waiting requests is left to the runtime's threads, so this one goes
        // straight on to the next batch.
        runtime.spawn(async move {
            for (reply, out) in outcomes {
                let _ = reply.send(out);
            }
        });
        // After the answers are on their way: starting a long WAL over may copy pages and
        // sync the database file here, which no request already committed should wait for.
        checkpoints.committed(&conn);
    }
}

/// [`commit_batch`], counted for `GET /metrics`: the writes in the batch and how long its
/// transaction took, fsync included.
#[allow(
    clippy::disallowed_methods,
    reason = "commit time is measured in monotonic time for metrics only; no protocol decision reads it"
)]
fn measured(conn: &Connection, batch: Vec<Job>) -> Vec<(oneshot::Sender<Output>, Output)> {
    let started = std::time::Instant::now();
    let size = batch.len();
    let outcomes = commit_batch(conn, batch);
    metrics::histogram!("grantry_group_commit_batch_size").record(size as f64);
    metrics::histogram!("grantry_group_commit_seconds").record(started.elapsed().as_secs_f64());
    outcomes
}

/// Runs one batch in one transaction; every job's outcome, made an error if the commit failed.
///
/// The writes run one after another with nothing between them: a savepoint per write would
/// copy every page it first touches into SQLite's sub-journal, for a failure that nearly never
/// comes. When one write does fail, the whole attempt is rolled back and the batch runs again
/// with each write in a savepoint of its own, so that the failing write undoes only itself.
fn commit_batch(conn: &Connection, mut batch: Vec<Job>) -> Vec<(oneshot::Sender<Output>, Output)> {
    let mut outcomes: Vec<Output> = match control(conn, "BEGIN IMMEDIATE") {
        Ok(()) => batch.iter_mut().map(|job| run_job(conn, job)).collect(),
        Err(e) => return refuse(batch, &sqlite_err(e), "cannot begin a write transaction"),
    };
    if outcomes.iter().any(Result::is_err) {
        if let Err(e) = control(conn, "ROLLBACK").and_then(|()| control(conn, "BEGIN IMMEDIATE")) {
            return refuse(batch, &sqlite_err(e), "cannot begin a write transaction");
        }
        outcomes = batch
            .iter_mut()
            .map(|job| in_savepoint(conn, job))
            .collect();
    }
    if let Err(e) = control(conn, "COMMIT") {
        let _ = control(conn, "ROLLBACK");
        let err = sqlite_err(e);
        for out in outcomes.iter_mut() {
            if out.is_ok() {
                *out = Err(prefixed(&err, "the commit failed"));
            }
        }
    }
    batch
        .into_iter()
        .map(|job| job.reply)
        .zip(outcomes)
        .collect()
}

/// Every job of `batch` answered with `err`, after `what`; nothing of it was written.
fn refuse(batch: Vec<Job>, err: &StoreError, what: &str) -> Vec<(oneshot::Sender<Output>, Output)> {
    batch
        .into_iter()
        .map(|job| (job.reply, Err(prefixed(err, what))))
        .collect()
}

/// One job, a panic in it made an error.
fn run_job(conn: &Connection, job: &mut Job) -> Output {
    catch_unwind(AssertUnwindSafe(|| (job.run)(conn))).unwrap_or_else(|_| {
        Err(StoreError::Backend(
            "a write panicked; it was undone".into(),
        ))
    })
}

/// One job in a savepoint of its own: a failing job undoes itself alone.
fn in_savepoint(conn: &Connection, job: &mut Job) -> Output {
    control(conn, "SAVEPOINT job").map_err(sqlite_err)?;
    let out = run_job(conn, job);
    let end = if out.is_ok() {
        control(conn, "RELEASE job")
    } else {
        control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"))
    };
    end.map_err(sqlite_err)?;
    out
}

/// A transaction-control statement, prepared once per connection rather than parsed on every
/// run.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
