//! Tuning of the writer, and the counters of what it did.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A hook run just before each push attempt (tests use it to push from outside in between).
pub type BeforePush = Arc<dyn Fn(u32) + Send + Sync>;

/// Tuning of the writer.
#[derive(Clone)]
pub struct WriterOptions {
    /// Push attempts before a batch fails with `PushRejected`.
    pub push_attempts: u32,
    /// First backoff after a rejected push; doubles up to one second.
    pub push_backoff: Duration,
    /// Most changes in one push.
    pub max_batch: usize,
    /// How far back `Unchanged` looks for the commit that last changed an app folder.
    pub history_depth: usize,
    /// Called with the attempt number just before each push.
    pub before_push: Option<BeforePush>,
    /// `read_app` answers from the cache when it matched the remote this recently.
    pub read_freshness: Duration,
    /// How long libgit2 waits for a TCP connection to a git server (zero: no limit).
    ///
    /// libgit2 keeps this (and `io_timeout`) in process-wide settings: the first `Writer`
    /// created in the process sets both, later Writers with other values only log a warning.
    pub connect_timeout: Duration,
    /// How long libgit2 waits for a git server to accept or send data on an open connection
    /// (HTTP(S) and SSH; zero: no limit). Process-wide, see `connect_timeout`.
    pub io_timeout: Duration,
    /// How long each `Writer` call waits for its worker's answer before it returns
    /// `GitError::Timeout`; covers the time the job waits in the queue. The job is dropped
    /// unanswered if the worker reaches it after the caller gave up.
    pub ask_timeout: Duration,
    /// After a `Timeout` or `RepositoryUnreachable`, the worker answers every job that needs
    /// the server (probes included) with the same error at once for this long, instead of
    /// connecting again: a dead server then costs each caller milliseconds, and one
    /// io_timeout per cool-down rather than per job. Jobs the cache can answer are served.
    pub unreachable_cooldown: Duration,
    /// Most jobs waiting for one worker; more give `GitError::Busy`.
    pub queue_capacity: usize,
    /// A worker that got no job for this long stops and deletes its cache folder.
    pub idle_timeout: Duration,
    /// A worker whose cache holds more objects it wrote itself (loose objects, and the packs
    /// of large batches) than this deletes the cache and clones it again (one pack) before
    /// its next batch.
    pub max_loose_objects: u64,
}

impl std::fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOptions")
            .field("push_attempts", &self.push_attempts)
            .field("max_batch", &self.max_batch)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("ask_timeout", &self.ask_timeout)
            .field("unreachable_cooldown", &self.unreachable_cooldown)
            .field("queue_capacity", &self.queue_capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_loose_objects", &self.max_loose_objects)
            .finish_non_exhaustive()
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            push_attempts: 6,
            push_backoff: Duration::from_millis(50),
            max_batch: 500,
            history_depth: 1000,
            before_push: None,
            read_freshness: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            ask_timeout: Duration::from_secs(120),
            unreachable_cooldown: Duration::from_secs(5),
            queue_capacity: 10_000,
            idle_timeout: Duration::from_secs(600),
            max_loose_objects: 50_000,
        }
    }
}

/// Counters of what the writers did, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub fetches: AtomicU64,
    pub pushes: AtomicU64,
    pub push_retries: AtomicU64,
    pub conflicts: AtomicU64,
    pub commits: AtomicU64,
    pub unchanged: AtomicU64,
    /// Caches deleted and cloned again because they were corrupt.
    pub reclones: AtomicU64,
    /// Caches deleted and cloned again because they held too many loose objects.
    pub compactions: AtomicU64,
    /// Submits waiting in the queues of all workers.
    pub queued: AtomicU64,
}

impl Stats {
    /// `(operation, count)` pairs of the counters.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("fetch", get(&self.fetches)),
            ("push", get(&self.pushes)),
            ("push_retry", get(&self.push_retries)),
            ("conflict", get(&self.conflicts)),
            ("commit", get(&self.commits)),
            ("unchanged", get(&self.unchanged)),
            ("reclone", get(&self.reclones)),
            ("compact", get(&self.compactions)),
        ]
    }

    /// Changes waiting in the queues of all workers.
    pub fn queue_depth(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
}
