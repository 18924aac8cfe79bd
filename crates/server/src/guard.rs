//! The limits on guessing secrets (docs/architecture.md, limits), as the server runs them:
//! [`Guard`] is the [`Throttle`] every door uses, and [`PasswordPool`] is where argon2id runs.
//!
//! Sources are counted per door with `governor` (GCRA) in memory. Subjects are counted in
//! the store, so every instance shares the counts; each instance mirrors the live locks into
//! memory ([`Guard::refresh`], about twice a second, see [`crate::tasks`]), so checking one
//! costs no store call and a lock set by any instance holds on all of them within a second.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::Clock as GovernorClock;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use secrecy::SecretString;

use grantry_core::credential::password;
use grantry_core::limits::{self, Door, Subject, Throttle, Throttled, Waiting};
use grantry_core::settings::LimitSettings;
use grantry_core::{Clock, Store, StoreError, Timestamp};

/// Most entries kept in one of the in-memory maps before expired ones are dropped.
const MAP_CAP: usize = 100_000;

/// `governor`'s view of the server's clock, so a fixed clock in tests drives it too.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl GovernorClock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now().millis()).unwrap_or(0))
    }
}

type SourceLimiter = RateLimiter<
    (Door, IpAddr),
    DashMapStateStore<(Door, IpAddr)>,
    LimiterClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// The server's [`Throttle`].
pub struct Guard {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    limits: LimitSettings,
    sources: SourceLimiter,
    /// Sources past their quota at a door, until when.
    blocked: Mutex<HashMap<(Door, IpAddr), Timestamp>>,
    /// Locked subjects, until when: this instance's own, and the store's as last mirrored.
    locked: Mutex<HashMap<String, Timestamp>>,
    /// Subjects this instance counted a failure of, whose success must clear the count.
    failing: Mutex<HashSet<String>>,
    /// The sizes of the three maps, read without their locks: while all are empty (no
    /// failure anywhere lately) an admitted attempt and a success cost three atomic loads.
    sizes: Sizes,
}

#[derive(Default)]
struct Sizes {
    blocked: AtomicUsize,
    locked: AtomicUsize,
    failing: AtomicUsize,
}

impl Sizes {
    fn set(cell: &AtomicUsize, len: usize) {
        cell.store(len, Ordering::Release);
    }

    fn any(cell: &AtomicUsize) -> bool {
        cell.load(Ordering::Acquire) > 0
    }
}

/// Locks a map, whatever a panicking holder left (the maps hold no invariant across keys).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Guard {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, limits: LimitSettings) -> Self {
        // The failure that finds the bucket empty blocks the source, so a bucket one smaller
        // than `source_failures` lets exactly that many through.
        let n = limits.source_failures.max(2);
        let burst = NonZeroU32::new(n - 1).unwrap_or(NonZeroU32::MIN);
        let every = limits.source_period / n;
        let quota = Quota::with_period(every)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        let sources = RateLimiter::dashmap_with_clock(quota, LimiterClock(clock.clone()));
        Guard {
            store,
            clock,
            limits,
            sources,
            blocked: Mutex::default(),
            locked: Mutex::default(),
            failing: Mutex::default(),
            sizes: Sizes::default(),
        }
    }

    /// Mirrors the store's live locks and drops what has expired (stale counts in the store
    /// are the sweeper's, `tasks::sweep_expired`).
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let live = self.store.active_lockouts(now).await?;
        {
            let mut locked = lock(&self.locked);
            locked.retain(|_, until| *until > now);
            for (subject, until) in live {
                let e = locked.entry(subject).or_insert(until);
                *e = (*e).max(until);
            }
            Sizes::set(&self.sizes.locked, locked.len());
        }
        {
            let mut blocked = lock(&self.blocked);
            blocked.retain(|_, until| *until > now);
            Sizes::set(&self.sizes.blocked, blocked.len());
        }
        self.sources.retain_recent();
        Ok(())
    }

    fn source_key(door: Door, source: Option<IpAddr>) -> (Door, IpAddr) {
        (door, source.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }
}

/// A door's name in metrics.
fn door_name(door: Door) -> &'static str {
    match door {
        Door::Login => "login",
        Door::Client => "client",
        Door::ApiKey => "api_key",
    }
}

fn throttled(waiting: Waiting, now: Timestamp, until: Timestamp) -> Throttled {
    let ms = u64::try_from(until.0.saturating_sub(now.0)).unwrap_or(0);
    Throttled {
        waiting,
        retry_after: Duration::from_millis(ms),
    }
}

/// Inserts into a bounded map: past [`MAP_CAP`] entries, the expired ones go first.
fn insert_bounded<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Timestamp>,
    key: K,
    until: Timestamp,
    now: Timestamp,
) {
    if map.len() >= MAP_CAP {
        map.retain(|_, u| *u > now);
    }
    let e = map.entry(key).or_insert(until);
    *e = (*e).max(until);
}

#[async_trait]
impl Throttle for Guard {
    fn admit(
        &self,
        door: Door,
        source: Option<IpAddr>,
        subject: &Subject<'_>,
    ) -> Result<(), Throttled> {
        let (blocked, locked) = (
            Sizes::any(&self.sizes.blocked),
            Sizes::any(&self.sizes.locked),
        );
        if !blocked && !locked {
            return Ok(());
        }
        let now = self.clock.now();
        if blocked {
            let key = Self::source_key(door, source);
            if let Some(until) = lock(&self.blocked).get(&key).filter(|u| **u > now) {
                metrics::counter!("grantry_throttled_total", "door" => door_name(door), "waiting" => "source")
                    .increment(1);
                return Err(throttled(Waiting::Source, now, *until));
            }
        }
        if locked {
            let key = subject.key();
            if let Some(until) = lock(&self.locked).get(&key).filter(|u| **u > now) {
                metrics::counter!("grantry_throttled_total", "door" => door_name(door), "waiting" => "lockout")
                    .increment(1);
                return Err(throttled(Waiting::Subject, now, *until));
            }
        }
        Ok(())
    }

    async fn failed(
        &self,
        door: Door,
        source: Option<IpAddr>,
        subject: Option<&Subject<'_>>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let reason = if subject.is_some() {
            "wrong_secret"
        } else {
            "unknown_subject"
        };
        metrics::counter!("grantry_auth_failures_total", "door" => door_name(door), "reason" => reason)
            .increment(1);
        let key = Self::source_key(door, source);
        if let Err(not_until) = self.sources.check_key(&key) {
            let wait = not_until.wait_time_from(LimiterClock(self.clock.clone()).now());
            let mut blocked = lock(&self.blocked);
            insert_bounded(&mut blocked, key, now.plus(wait), now);
            Sizes::set(&self.sizes.blocked, blocked.len());
        }
        let Some(subject) = subject else {
            return Ok(());
        };
        let key = subject.key();
        {
            let mut failing = lock(&self.failing);
            if failing.len() >= MAP_CAP {
                failing.clear();
            }
            failing.insert(key.clone());
            Sizes::set(&self.sizes.failing, failing.len());
        }
        if let Some(until) = limits::count_failure(&*self.store, &self.limits, subject, now).await?
        {
            let mut locked = lock(&self.locked);
            insert_bounded(&mut locked, key, until, now);
            Sizes::set(&self.sizes.locked, locked.len());
        }
        Ok(())
    }

    async fn succeeded(&self, door: Door, subject: &Subject<'_>) -> Result<(), StoreError> {
        // A sign-in always clears the account's count, wherever it was counted; the machine
        // doors (hot paths) clear only what this instance counted, so a success costs no
        // store call, and while nothing failed lately not even a lock.
        if door != Door::Login && !Sizes::any(&self.sizes.failing) {
            return Ok(());
        }
        let key = subject.key();
        let counted = {
            let mut failing = lock(&self.failing);
            let removed = failing.remove(&key);
            Sizes::set(&self.sizes.failing, failing.len());
            removed
        };
        if counted || door == Door::Login {
            self.store.clear_failures(&key).await?;
        }
        Ok(())
    }
}

/// The bounded pool argon2id runs on: one thread per core, fed by a queue, so a flood of
/// sign-ins queues here instead of stalling the workers that serve the APIs. Threads of its
/// own rather than tokio's blocking pool: each verification takes 19 MiB, and a thread that
/// frees it gets the same memory back for its next one, where the blocking pool's changing
/// threads each kept a copy in an allocator arena of their own (15 s of the benchmark's login
/// flood left 505 MiB resident that way, 232 MiB this way: docs/benchmarks/README.md).
pub struct PasswordPool {
    jobs: std::sync::mpsc::Sender<PasswordJob>,
}

/// A password, the PHC string to check it against, and where the answer goes.
type PasswordJob = (SecretString, String, tokio::sync::oneshot::Sender<bool>);

impl PasswordPool {
    /// A pool of `size` threads (at least one); they end when the pool is dropped.
    pub fn new(size: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<PasswordJob>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..size.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name("grantry-password".into())
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held while waiting, so one idle thread waits at a time.
                        let next = lock(&queue).recv();
                        let Ok((password, phc, reply)) = next else {
                            return;
                        };
                        use secrecy::ExposeSecret;
                        let _ = reply.send(password::verify(password.expose_secret(), &phc));
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a password verification thread");
            }
        }
        PasswordPool { jobs }
    }

    /// One thread per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// The niceness of the password threads: under a flood of sign-ins they take the cores
/// only when the workers serving the APIs leave them idle, so a protected call waits for
/// the scheduler far less than for one argon2id verification (docs/architecture.md, limits
/// on guessing secrets).
const PASSWORD_NICENESS: i32 = 10;

/// Gives the calling thread [`PASSWORD_NICENESS`]; on Linux the nice value is a thread's
/// own (setpriority(2), "Bugs"). Where that fails, or elsewhere, the thread keeps the
/// process's priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority(2) reads only its integer arguments; `who = 0` is the calling
        // thread.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, PASSWORD_NICENESS) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the password threads keep the process's priority"
            );
        }
    }
}

#[async_trait]
impl password::Verifier for PasswordPool {
    async fn verify(&self, password: SecretString, phc: String) -> bool {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.jobs.send((password, phc, reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use grantry_core::credential::password::Verifier;

    /// A thread's nice value: the 19th field of its `stat` (proc(5)), counted after the
    /// parenthesised name.
    fn niceness(task: &std::path::Path) -> Option<i32> {
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        let after = stat.get(stat.rfind(')')? + 2..)?;
        after.split(' ').nth(16)?.parse().ok()
    }

    /// The nice values of this process's threads named `name` (their `comm`).
    fn niceness_of(name: &str) -> Vec<i32> {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        tasks
            .filter_map(|task| {
                let dir = task.ok()?.path();
                let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                (comm.trim_end() == name).then(|| niceness(&dir))?
            })
            .collect()
    }

    #[tokio::test]
    async fn password_threads_verify_at_a_lower_priority_than_the_workers() {
        let own = niceness(std::path::Path::new("/proc/thread-self")).unwrap();
        let pool = PasswordPool::new(2);
        let phc = password::hash("correct horse battery staple").unwrap();
        assert!(
            pool.verify("correct horse battery staple".into(), phc.clone())
                .await
        );
        assert!(!pool.verify("wrong".into(), phc).await);
        // Thread names are cut to 15 bytes in `comm`. In a process started at least that
        // nice, the threads may keep its value; anything less nice is a failure either way.
        let done = |n: i32| match own < PASSWORD_NICENESS {
            true => n == PASSWORD_NICENESS,
            false => n >= PASSWORD_NICENESS,
        };
        let mut nice = Vec::new();
        for _ in 0..200 {
            nice = niceness_of("grantry-passwor");
            if nice.len() >= 2 && nice.iter().all(|&n| done(n)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(nice.len() >= 2, "{nice:?}");
        assert!(
            nice.iter().all(|&n| done(n)),
            "{nice:?}, the test's thread {own}"
        );
    }
}
