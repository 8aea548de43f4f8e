//! The Writer's front: the workers by repository, sending a job to the right one (starting
//! it if need be) and waiting for its answer within the deadline.

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

use super::job::{Job, QueueTicket, Queued};
use super::{
    Author, Change, Credentials, GitError, LogEntry, Outcome, RepoKey, Stats, WorkerKey,
    WriterOptions, redact_url, secs_ceil, short_hash, worker,
};

/// The sending side of a worker's queue. Jobs are only ever sent with the registry locked,
/// which is what lets a worker retire without losing a job (see `Worker::retire`). The
/// queue is an unbounded channel bounded by `depth` (a bounded std channel would allocate
/// all `queue_capacity` slots up front, for every worker).
pub(super) struct WorkerHandle {
    pub(super) id: u64,
    jobs: std::sync::mpsc::Sender<Queued>,
    /// Jobs sent and not yet taken by the worker.
    depth: Arc<AtomicUsize>,
}

/// The running workers, by repository, branch and credentials.
pub(super) type Registry = Mutex<HashMap<WorkerKey, WorkerHandle>>;

pub(super) fn lock(
    registry: &Registry,
) -> std::sync::MutexGuard<'_, HashMap<WorkerKey, WorkerHandle>> {
    registry.lock().unwrap_or_else(|e| e.into_inner())
}

/// The git writer: cheap to clone, shared by all reconciles.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    cache_dir: PathBuf,
    opts: WriterOptions,
    workers: Arc<Registry>,
    stats: Arc<Stats>,
    next_worker: AtomicU64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("cache_dir", &self.inner.cache_dir)
            .finish()
    }
}

/// Sets libgit2's process-wide connect and I/O timeouts, once per process: the first
/// Writer's values apply.
fn set_network_timeouts(connect: Duration, io: Duration) {
    static APPLIED: OnceLock<(Duration, Duration)> = OnceLock::new();
    let applied = *APPLIED.get_or_init(|| {
        apply_network_timeouts(connect, io);
        (connect, io)
    });
    if applied != (connect, io) {
        warn!(
            connect_timeout = ?applied.0,
            io_timeout = ?applied.1,
            "libgit2's timeouts are process-wide and already set; this Writer's are ignored"
        );
    }
}

#[allow(unsafe_code)]
fn apply_network_timeouts(connect: Duration, io: Duration) {
    let millis = |d: Duration| c_int::try_from(d.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: the setters write two plain ints that libgit2 reads when it opens a socket or
    // an SSH session. This runs once per process, inside `OnceLock::get_or_init` in
    // `Writer::new`: concurrent `Writer::new` calls wait for it, and every libgit2 network
    // operation of this crate runs on a worker thread that a Writer starts after its
    // `new` returned, so the writes happen before any read and never race with one.
    let res = unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(millis(connect))
            .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(millis(io)))
    };
    if let Err(e) = res {
        warn!(error = %e.message(), "could not set libgit2's network timeouts");
    }
}

impl Writer {
    /// A writer keeping its cached clones under `cache_dir`. Sets libgit2's process-wide
    /// network timeouts the first time a Writer is made (see `WriterOptions::connect_timeout`).
    pub fn new(cache_dir: PathBuf, opts: WriterOptions) -> Self {
        set_network_timeouts(opts.connect_timeout, opts.io_timeout);
        Writer {
            inner: Arc::new(Inner {
                cache_dir,
                opts,
                workers: Arc::default(),
                stats: Arc::default(),
                next_worker: AtomicU64::new(0),
            }),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// How many workers (threads, each with a cached clone) are running: one per repository,
    /// branch and credentials.
    pub fn workers(&self) -> usize {
        lock(&self.inner.workers).len()
    }

    /// Queues a job for the worker of the repository and these credentials, starting the
    /// worker if there is none.
    fn send<T>(
        &self,
        repo: RepoKey,
        creds: Credentials,
        job: impl FnOnce(oneshot::Sender<T>) -> Job,
    ) -> Result<oneshot::Receiver<T>, GitError> {
        let key = WorkerKey::new(repo, &creds);
        let (tx, rx) = oneshot::channel();
        let mut pending = (creds, job(tx));
        let mut workers = lock(&self.inner.workers);
        if let Some(handle) = workers.get(&key) {
            if handle.depth.load(Ordering::Relaxed) >= self.inner.opts.queue_capacity.max(1) {
                return Err(GitError::Busy {
                    url: redact_url(&key.repo.url),
                });
            }
            handle.depth.fetch_add(1, Ordering::Relaxed);
            match handle.jobs.send(pending) {
                Ok(()) => return Ok(rx),
                // The worker is gone (a worker that retires removes its handle first, so
                // this one died): start another.
                Err(std::sync::mpsc::SendError(back)) => {
                    workers.remove(&key);
                    pending = back;
                }
            }
        }
        let (jobs, queue) = std::sync::mpsc::channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let id = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
        let worker = worker::Worker::new(
            key.clone(),
            id,
            &self.inner.cache_dir,
            self.inner.opts.clone(),
            self.inner.stats.clone(),
            Arc::downgrade(&self.inner.workers),
            depth.clone(),
        );
        std::thread::Builder::new()
            .name(format!("git-{}", short_hash(&key)))
            .spawn(move || worker.run(queue))
            .map_err(|e| GitError::GitFailed {
                message: format!("could not start a git worker thread: {e}"),
            })?;
        depth.fetch_add(1, Ordering::Relaxed);
        if jobs.send(pending).is_err() {
            // The worker died at once.
            return Err(GitError::WorkerGone {
                url: redact_url(&key.repo.url),
            });
        }
        workers.insert(key, WorkerHandle { id, jobs, depth });
        Ok(rx)
    }

    /// Sends a job and waits at most `ask_timeout` for its answer.
    async fn ask<T>(
        &self,
        key: RepoKey,
        creds: Credentials,
        operation: &'static str,
        job: impl FnOnce(oneshot::Sender<Result<T, GitError>>) -> Job,
    ) -> Result<T, GitError> {
        let url = redact_url(&key.url);
        let rx = self.send(key, creds, job)?;
        let limit = self.inner.opts.ask_timeout;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(res)) => res,
            Ok(Err(_)) => Err(GitError::WorkerGone { url }),
            Err(_) => Err(GitError::Timeout {
                url,
                operation: operation.to_string(),
                after_secs: secs_ceil(limit),
            }),
        }
    }

    /// Commits and pushes one change; returns its commit. Changes submitted while the worker
    /// is busy go out together in its next push. A change that cannot be written
    /// (`InvalidPath`, `InvalidKustomization`, `InvalidAuthor`, `FolderNotManaged`,
    /// `FolderOwned`) fails alone; the others of its push are committed. Whether the app
    /// folder may be written is decided on the tree the change is committed on: a folder
    /// without `.tumbler/release.yaml` is never written, one recorded as another Release's
    /// only with `change.replaces` naming it, and a removal happens only when the folder is
    /// recorded as `change.release`'s (otherwise `Unchanged`). Every method answers within `ask_timeout` (`Timeout`) and
    /// says `Busy` at once when the repository's queue is full.
    pub async fn submit(
        &self,
        key: RepoKey,
        creds: Credentials,
        change: Change,
    ) -> Result<Outcome, GitError> {
        let ticket = QueueTicket::new(&self.inner.stats);
        self.ask(key, creds, "submit", |reply| Job::Submit {
            change: Box::new(change),
            reply,
            ticket,
        })
        .await
    }

    /// Fetches the branch; returns its head. Proves the repository is reachable with these
    /// credentials and the branch exists.
    pub async fn probe(&self, key: RepoKey, creds: Credentials) -> Result<String, GitError> {
        self.ask(key, creds, "probe", |reply| Job::Probe { reply })
            .await
    }

    /// The files of an app folder at the head of the branch (freshly fetched).
    pub async fn read_app(
        &self,
        key: RepoKey,
        creds: Credentials,
        env_path: &str,
        app: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, GitError> {
        let (env_path, app) = (env_path.to_string(), app.to_string());
        self.ask(key, creds, "read_app", |reply| Job::ReadApp {
            env_path,
            app,
            reply,
        })
        .await
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors (fetching if the cache
    /// does not know `descendant` yet).
    pub async fn is_ancestor(
        &self,
        key: RepoKey,
        creds: Credentials,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitError> {
        let (ancestor, descendant) = (ancestor.to_string(), descendant.to_string());
        self.ask(key, creds, "is_ancestor", |reply| Job::IsAncestor {
            ancestor,
            descendant,
            reply,
        })
        .await
    }

    /// The release log of an Environment (and app), newest first. With `committer` (the
    /// Environment's commit author), commits by anyone else are skipped: their trailers are
    /// not trusted. `None` lists every commit with trailers.
    pub async fn log(
        &self,
        key: RepoKey,
        creds: Credentials,
        env_path: &str,
        app: Option<&str>,
        limit: usize,
        committer: Option<&Author>,
    ) -> Result<Vec<LogEntry>, GitError> {
        let (env_path, app) = (env_path.to_string(), app.map(str::to_string));
        let committer = committer.cloned();
        self.ask(key, creds, "log", |reply| Job::Log {
            env_path,
            app,
            limit,
            committer,
            reply,
        })
        .await
    }

    /// A file at a commit (fetching first if the commit is unknown).
    pub async fn file_at(
        &self,
        key: RepoKey,
        creds: Credentials,
        commit: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let (commit, path) = (commit.to_string(), path.to_string());
        self.ask(key, creds, "file_at", |reply| Job::FileAt {
            commit,
            path,
            reply,
        })
        .await
    }
}
