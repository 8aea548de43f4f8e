//! The git writer: one worker per repository (URL + branch) owning a cached bare clone,
//! trees built in memory, one commit per change, batched pushes, and the release history
//! read back from commit trailers. Talks only to git, never to Kubernetes.
//!
//! libgit2 is kept on a short leash: a worker opens its repository per batch and drops it
//! afterwards, holds nothing per Release, and a cache that is corrupt (and only then) is
//! deleted and cloned again rather than repaired.
//!
//! Nothing one input or one server does can stall the rest: a change that cannot be
//! written (a path git refuses, a broken kustomization.yaml, a bad author) fails alone and
//! the rest of its batch is pushed; network operations have connect and I/O timeouts and
//! every call a deadline (`WriterOptions::ask_timeout`); each repository has its own
//! worker thread with a bounded queue; a server that just failed is not asked again during
//! a short cool-down; idle workers stop and delete their cache; a cache grown full of loose
//! objects is cloned again.

mod auth;
mod history;
mod tree;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::warn;

pub use history::{LogEntry, file_at, is_ancestor, log};

/// Which repository and branch a worker owns.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RepoKey {
    pub url: String,
    pub branch: String,
}

/// Credentials from an Environment's Secret. `Debug` never shows the secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        username: String,
        password: String,
    },
    Ssh {
        identity: String,
        known_hosts: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Basic { username, .. } => write!(
                f,
                "Basic {{ username: {username:?}, password: <redacted> }}"
            ),
            Credentials::Ssh { known_hosts, .. } => {
                write!(
                    f,
                    "Ssh {{ identity: <redacted>, known_hosts: {} }}",
                    if known_hosts.is_some() {
                        "<set>"
                    } else {
                        "<none>"
                    }
                )
            }
        }
    }
}

impl Credentials {
    /// The secret strings, to scrub from any message that might echo them.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::None => vec![],
            Credentials::Basic { password, .. } => vec![password.as_str()],
            Credentials::Ssh { identity, .. } => vec![identity.as_str()],
        }
    }
}

/// Author and committer of Tumbler's commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// Why a change is made; shows in the commit message and the `Tumbler-Action` trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Release,
    Delete,
    Rollback { from: String },
}

impl ChangeKind {
    pub fn action(&self) -> &'static str {
        match self {
            ChangeKind::Release => "release",
            ChangeKind::Delete => "delete",
            ChangeKind::Rollback { .. } => "rollback",
        }
    }
}

/// One Release's change to one app folder.
#[derive(Clone, Debug)]
pub struct Change {
    /// `<namespace>/<name>` of the Release.
    pub release: String,
    pub generation: i64,
    pub version: String,
    pub environment: String,
    /// Folder of the Environment in the repository.
    pub env_path: String,
    /// App folder under `env_path`.
    pub app: String,
    /// The app folder's files (paths relative to it); `None` removes the app.
    pub files: Option<BTreeMap<String, Vec<u8>>>,
    /// How the environment's kustomization.yaml lists the app, relative to the environment
    /// folder; `None`: the app folder itself.
    pub entry: Option<String>,
    pub author: Author,
    pub kind: ChangeKind,
}

impl Change {
    fn message(&self) -> String {
        let title = match &self.kind {
            ChangeKind::Release => format!(
                "release {} {} to {}",
                self.app, self.version, self.environment
            ),
            ChangeKind::Delete => format!("remove {} from {}", self.app, self.environment),
            ChangeKind::Rollback { from } => {
                format!(
                    "rollback {} to {} in {} (from {from})",
                    self.app, self.version, self.environment
                )
            }
        };
        format!(
            "{title}\n\nTumbler-Release: {}\nTumbler-Generation: {}\nTumbler-Version: {}\nTumbler-App: {}\nTumbler-Environment: {}\nTumbler-Path: {}\nTumbler-Action: {}\n",
            self.release,
            self.generation,
            one_line(&self.version),
            self.app,
            self.environment,
            self.env_path,
            self.kind.action()
        )
        // libgit2 takes the message as a C string.
        .replace('\0', "")
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// What a submitted change came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new commit, pushed.
    Committed { commit: String },
    /// The repository already had these files: no commit. `commit` is the last commit that
    /// changed the app folder (or the head, if that is too far back).
    Unchanged { commit: String },
}

impl Outcome {
    pub fn commit(&self) -> &str {
        match self {
            Outcome::Committed { commit } | Outcome::Unchanged { commit } => commit,
        }
    }
}

/// Errors of the writer. Messages never contain credentials; URLs are redacted.
///
/// Three kinds matter to callers: terminal errors ([`GitError::is_terminal`]) need a person
/// and will not go away by retrying; per-change errors ([`GitError::is_per_change`]) concern
/// one change only and never fail the other changes of its batch; everything else is
/// transient and worth retrying later.
#[derive(Clone, Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "authentication to {url} failed: check the username/password or deploy key in the Environment's Secret"
    )]
    AuthenticationFailed { url: String },
    #[error("repository {url} is unreachable: {message}")]
    RepositoryUnreachable { url: String, message: String },
    #[error(
        "git {operation} on {url} did not answer within {after_secs}s; the server is slow or down, retrying later"
    )]
    Timeout {
        url: String,
        operation: String,
        after_secs: u64,
    },
    #[error("branch {branch:?} does not exist in {url}: create it, or fix spec.repository.branch")]
    BranchNotFound { url: String, branch: String },
    #[error("push to {url} was rejected {attempts} times in a row: {message}")]
    PushRejected {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("invalid path {path:?}: {message}")]
    InvalidPath { path: String, message: String },
    #[error("{path} in git is invalid: {message}; fix it by hand in the repository")]
    InvalidKustomization { path: String, message: String },
    #[error("invalid commit author: {message}; fix the Environment's spec.commit.author")]
    InvalidAuthor { message: String },
    #[error("the local git cache is corrupt ({message}); it is cloned again")]
    CacheCorrupt { message: String },
    #[error("the git writer for {url} has too many queued jobs; retrying later")]
    Busy { url: String },
    #[error("the git writer for {url} stopped")]
    WorkerGone { url: String },
    #[error("git: {message}")]
    GitFailed { message: String },
}

impl GitError {
    /// CamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            GitError::AuthenticationFailed { .. } => "AuthenticationFailed",
            GitError::RepositoryUnreachable { .. } => "RepositoryUnreachable",
            GitError::Timeout { .. } => "GitTimeout",
            GitError::BranchNotFound { .. } => "BranchNotFound",
            GitError::PushRejected { .. } => "PushRejected",
            GitError::InvalidPath { .. } => "InvalidPath",
            GitError::InvalidKustomization { .. } => "InvalidKustomization",
            GitError::InvalidAuthor { .. } => "InvalidAuthor",
            GitError::CacheCorrupt { .. } => "GitCacheCorrupt",
            GitError::Busy { .. } => "GitBusy",
            GitError::WorkerGone { .. } | GitError::GitFailed { .. } => "GitFailed",
        }
    }

    /// Whether only a person can fix this (credentials, branch, paths, the repository's
    /// kustomization.yaml, the author); retrying without a change does not help.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            GitError::AuthenticationFailed { .. }
                | GitError::BranchNotFound { .. }
                | GitError::InvalidPath { .. }
                | GitError::InvalidKustomization { .. }
                | GitError::InvalidAuthor { .. }
        )
    }

    /// Whether this concerns one change only: the change is skipped and the rest of its
    /// batch is committed and pushed.
    pub fn is_per_change(&self) -> bool {
        matches!(
            self,
            GitError::InvalidPath { .. }
                | GitError::InvalidKustomization { .. }
                | GitError::InvalidAuthor { .. }
        )
    }
}

/// Removes user information from a URL: `https://user:token@host/x` → `https://host/x`.
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

/// Removes user information from every URL in a text.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

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
    /// A worker whose cache holds more objects it wrote itself (loose objects) than this
    /// deletes the cache and clones it again (one pack) before its next batch.
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

/// The files of an app folder, relative to it.
pub type AppFiles = BTreeMap<String, Vec<u8>>;

/// A request to a worker.
enum Job {
    Submit {
        change: Box<Change>,
        reply: oneshot::Sender<Result<Outcome, GitError>>,
        ticket: QueueTicket,
    },
    Probe {
        reply: oneshot::Sender<Result<String, GitError>>,
    },
    ReadApp {
        env_path: String,
        app: String,
        reply: oneshot::Sender<Result<Option<AppFiles>, GitError>>,
    },
    IsAncestor {
        ancestor: String,
        descendant: String,
        reply: oneshot::Sender<Result<bool, GitError>>,
    },
    Log {
        env_path: String,
        app: Option<String>,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<LogEntry>, GitError>>,
    },
    FileAt {
        commit: String,
        path: String,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, GitError>>,
    },
}

impl Job {
    /// Whether the caller stopped waiting for the answer (its `ask` timed out).
    fn abandoned(&self) -> bool {
        match self {
            Job::Submit { reply, .. } => reply.is_closed(),
            Job::Probe { reply } => reply.is_closed(),
            Job::ReadApp { reply, .. } => reply.is_closed(),
            Job::IsAncestor { reply, .. } => reply.is_closed(),
            Job::Log { reply, .. } => reply.is_closed(),
            Job::FileAt { reply, .. } => reply.is_closed(),
        }
    }
}

/// Counts a submit in `Stats::queued` from its creation until the worker takes it out of
/// its queue, or until it is dropped for any other reason (a full queue, a dead worker).
struct QueueTicket(Arc<Stats>);

impl QueueTicket {
    fn new(stats: &Arc<Stats>) -> Self {
        stats.queued.fetch_add(1, Ordering::Relaxed);
        QueueTicket(stats.clone())
    }
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

type Queued = (Credentials, Job);

/// The sending side of a worker's queue. Jobs are only ever sent with the registry locked,
/// which is what lets a worker retire without losing a job (see `Worker::retire`). The
/// queue is an unbounded channel bounded by `depth` (a bounded std channel would allocate
/// all `queue_capacity` slots up front, for every worker).
struct WorkerHandle {
    id: u64,
    jobs: std::sync::mpsc::Sender<Queued>,
    /// Jobs sent and not yet taken by the worker.
    depth: Arc<AtomicUsize>,
}

/// The running workers, by repository.
type Registry = Mutex<HashMap<RepoKey, WorkerHandle>>;

fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, HashMap<RepoKey, WorkerHandle>> {
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

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
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

    /// How many workers (threads, each with a cached clone) are running.
    pub fn workers(&self) -> usize {
        lock(&self.inner.workers).len()
    }

    /// Queues a job for the repository's worker, starting the worker if there is none.
    fn send<T>(
        &self,
        key: RepoKey,
        creds: Credentials,
        job: impl FnOnce(oneshot::Sender<T>) -> Job,
    ) -> Result<oneshot::Receiver<T>, GitError> {
        let (tx, rx) = oneshot::channel();
        let mut pending = (creds, job(tx));
        let mut workers = lock(&self.inner.workers);
        if let Some(handle) = workers.get(&key) {
            if handle.depth.load(Ordering::Relaxed) >= self.inner.opts.queue_capacity.max(1) {
                return Err(GitError::Busy {
                    url: redact_url(&key.url),
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
                url: redact_url(&key.url),
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
    /// (`InvalidPath`, `InvalidKustomization`, `InvalidAuthor`) fails alone; the others of
    /// its push are committed. Every method answers within `ask_timeout` (`Timeout`) and
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

    /// The release log of an Environment (and app), newest first.
    pub async fn log(
        &self,
        key: RepoKey,
        creds: Credentials,
        env_path: &str,
        app: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LogEntry>, GitError> {
        let (env_path, app) = (env_path.to_string(), app.map(str::to_string));
        self.ask(key, creds, "log", |reply| Job::Log {
            env_path,
            app,
            limit,
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

fn short_hash(key: &RepoKey) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\n{}", key.url, key.branch));
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests;
