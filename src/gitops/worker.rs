//! One worker per repository: a thread that owns the cached bare clone and serves jobs in
//! batches. Submits queued together become consecutive commits and one push.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, ErrorClass, ErrorCode, FetchOptions, FileMode, Oid, PushOptions, Repository,
    Signature,
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::auth::{self, host_of};
use super::job::{Job, Queued};
use super::tree::{self, components};
use super::writer::{Registry, lock};
use super::{
    Author, Change, Credentials, GitError, Outcome, RepoKey, Stats, WriterOptions, history,
    redact_text, short_hash,
};

const PUSH_REF: &str = "refs/tumbler/push";

pub struct Worker {
    key: RepoKey,
    /// Tells this worker's handle in the registry from a successor's.
    id: u64,
    dir: PathBuf,
    opts: WriterOptions,
    stats: Arc<Stats>,
    /// The Writer's workers, to remove this one's handle when it retires.
    registry: Weak<Registry>,
    /// Jobs in the queue (the Writer adds, the worker takes away).
    depth: Arc<AtomicUsize>,
    /// When the cache last matched the remote (a fetch or one of our pushes).
    synced: Cell<Option<Instant>>,
    /// The last network failure (`Timeout`, `RepositoryUnreachable`) and when it happened.
    down: RefCell<Option<(Instant, GitError)>>,
    /// Objects written into the cache since it was created (they are loose objects).
    loose: Cell<u64>,
    /// Whether the current batch already deleted the cache and cloned it again.
    recloned: Cell<bool>,
}

type Reply = oneshot::Sender<Result<Outcome, GitError>>;

enum PushError {
    Rejected(String),
    Failed(GitError),
}

impl Worker {
    pub fn new(
        key: RepoKey,
        id: u64,
        cache_dir: &Path,
        opts: WriterOptions,
        stats: Arc<Stats>,
        registry: Weak<Registry>,
        depth: Arc<AtomicUsize>,
    ) -> Self {
        let dir = cache_dir.join(short_hash(&key));
        Worker {
            key,
            id,
            dir,
            opts,
            stats,
            registry,
            depth,
            synced: Cell::new(None),
            down: RefCell::new(None),
            loose: Cell::new(0),
            recloned: Cell::new(false),
        }
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.key.branch)
    }

    fn url(&self) -> String {
        redact_text(&self.key.url)
    }

    /// Serves jobs until the Writer is gone or no job came for `idle_timeout`.
    pub fn run(self, queue: Receiver<Queued>) {
        loop {
            let first = match queue.recv_timeout(self.opts.idle_timeout) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => match self.retire(&queue) {
                    Some(job) => job,
                    None => return,
                },
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < self.opts.max_batch.max(1) {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.depth.fetch_sub(batch.len(), Ordering::Relaxed);
            self.serve(batch);
        }
    }

    /// Stops an idle worker: removes its handle from the registry and deletes its cache.
    /// Jobs are only sent with the registry locked, so once the queue is seen empty under
    /// the lock and the handle is gone, no job can reach this worker any more; a job that
    /// came just before is served instead. The cache folder is moved aside under the lock,
    /// so a successor for the same repository never sees it half deleted.
    fn retire(&self, queue: &Receiver<Queued>) -> Option<Queued> {
        let registry = self.registry.upgrade()?;
        let mut workers = lock(&registry);
        if let Ok(job) = queue.try_recv() {
            return Some(job);
        }
        if workers.get(&self.key).is_none_or(|h| h.id != self.id) {
            return None;
        }
        workers.remove(&self.key);
        let mut trash = self.dir.clone().into_os_string();
        trash.push(format!(".retired-{}-{}", std::process::id(), self.id));
        let trash = PathBuf::from(trash);
        let moved = std::fs::rename(&self.dir, &trash).is_ok();
        if !moved {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        drop(workers);
        if moved {
            let _ = std::fs::remove_dir_all(&trash);
        }
        debug!(repo = %self.url(), "idle git worker stopped; cache deleted");
        None
    }

    fn serve(&self, batch: Vec<Queued>) {
        self.recloned.set(false);
        if self.loose.get() > self.opts.max_loose_objects {
            info!(repo = %self.url(), objects = self.loose.get(), "git cache holds many loose objects; cloning it again");
            self.stats.compactions.fetch_add(1, Ordering::Relaxed);
            self.discard_cache();
        }
        let mut submits: Vec<(Credentials, Box<Change>, Reply)> = vec![];
        let mut others = vec![];
        for (creds, job) in batch {
            // Nobody waits for the answer any more: the caller will ask again.
            if job.abandoned() {
                continue;
            }
            match job {
                Job::Submit {
                    change,
                    reply,
                    ticket,
                } => {
                    drop(ticket);
                    submits.push((creds, change, reply));
                }
                other => others.push((creds, other)),
            }
        }
        for (creds, job) in others {
            self.serve_read(&creds, job);
        }
        // Submits with the same credentials share a push.
        while !submits.is_empty() {
            let creds = submits[0].0.clone();
            let (same, rest): (Vec<_>, Vec<_>) =
                submits.into_iter().partition(|(c, _, _)| *c == creds);
            submits = rest;
            let changes = same.into_iter().map(|(_, c, r)| (*c, r)).collect();
            self.submit_batch(&creds, changes);
        }
    }

    fn serve_read(&self, creds: &Credentials, job: Job) {
        match job {
            Job::Probe { reply } => {
                let res = self.with_repo(|repo| {
                    self.fetch(repo, creds)?
                        .map(|o| o.to_string())
                        .ok_or_else(|| self.branch_not_found())
                });
                let _ = reply.send(res);
            }
            Job::ReadApp {
                env_path,
                app,
                reply,
            } => {
                let res = self.with_repo(|repo| {
                    // Reads right after a fetch or a push of ours use the cache as it is.
                    let recent = self
                        .synced
                        .get()
                        .is_some_and(|t| t.elapsed() < self.opts.read_freshness);
                    let cached = repo
                        .find_reference(&self.tracking_ref())
                        .ok()
                        .and_then(|r| r.target())
                        .filter(|_| recent);
                    let head = match cached {
                        Some(head) => head,
                        None => match self.fetch(repo, creds)? {
                            Some(head) => head,
                            None => return Err(self.branch_not_found()),
                        },
                    };
                    let tree = repo
                        .find_commit(head)
                        .and_then(|c| c.tree())
                        .map_err(corrupt)?;
                    tree::read_folder(repo, &tree, &format!("{env_path}/{app}"))
                });
                let _ = reply.send(res);
            }
            Job::IsAncestor {
                ancestor,
                descendant,
                reply,
            } => {
                let res = self.with_repo(|repo| {
                    let (a, d) = (oid(&ancestor)?, oid(&descendant)?);
                    if a == d {
                        return Ok(true);
                    }
                    if repo.find_commit(d).is_err() || repo.find_commit(a).is_err() {
                        self.fetch(repo, creds)?;
                    }
                    if repo.find_commit(d).is_err() || repo.find_commit(a).is_err() {
                        return Ok(false);
                    }
                    repo.graph_descendant_of(d, a).map_err(corrupt)
                });
                let _ = reply.send(res);
            }
            Job::Log {
                env_path,
                app,
                limit,
                reply,
            } => {
                let res = self.with_repo(|repo| {
                    let Some(head) = self.fetch(repo, creds)? else {
                        return Err(self.branch_not_found());
                    };
                    history::log_from(repo, head, Some(&env_path), app.as_deref(), limit)
                        .map_err(corrupt)
                });
                let _ = reply.send(res);
            }
            Job::FileAt {
                commit,
                path,
                reply,
            } => {
                let res = self.with_repo(|repo| {
                    let c = oid(&commit)?;
                    if repo.find_commit(c).is_err() {
                        self.fetch(repo, creds)?;
                    }
                    history::file_at_oid(repo, c, &path)
                });
                let _ = reply.send(res);
            }
            Job::Submit { .. } => unreachable!("submits are batched"),
        }
    }

    fn branch_not_found(&self) -> GitError {
        GitError::BranchNotFound {
            url: self.url(),
            branch: self.key.branch.clone(),
        }
    }

    /// Opens the cache (creating it), runs `f`; if the cache is corrupt (`CacheCorrupt`, and
    /// only then), deletes it and tries once more on a fresh clone, at most once a batch.
    fn with_repo<T>(&self, f: impl Fn(&Repository) -> Result<T, GitError>) -> Result<T, GitError> {
        match self.open().and_then(|repo| f(&repo)) {
            Err(GitError::CacheCorrupt { message }) if !self.recloned.get() => {
                warn!(repo = %self.url(), error = %message, "git cache corrupt; cloning again");
                self.recloned.set(true);
                self.stats.reclones.fetch_add(1, Ordering::Relaxed);
                self.discard_cache();
                self.open().and_then(|repo| f(&repo))
            }
            other => other,
        }
    }

    fn discard_cache(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        self.loose.set(0);
        self.synced.set(None);
    }

    fn open(&self) -> Result<Repository, GitError> {
        if self.dir.exists() {
            // A killed process may leave lock files behind; this worker is the only writer.
            remove_locks(&self.dir);
            return Repository::open_bare(&self.dir).map_err(|e| GitError::CacheCorrupt {
                message: format!("the cache does not open: {}", redact_text(e.message())),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| GitError::GitFailed {
            message: format!("cannot create the cache folder: {e}"),
        })?;
        self.loose.set(0);
        self.synced.set(None);
        Repository::init_bare(&self.dir).map_err(corrupt)
    }

    /// The error of the last network failure, while its cool-down lasts.
    fn cooling_down(&self) -> Option<GitError> {
        let down = self.down.borrow();
        let (at, err) = down.as_ref()?;
        (at.elapsed() < self.opts.unreachable_cooldown).then(|| err.clone())
    }

    /// Remembers a network failure for the cool-down; the server answered otherwise.
    fn note_network(&self, err: Option<&GitError>) {
        *self.down.borrow_mut() = match err {
            Some(e @ (GitError::Timeout { .. } | GitError::RepositoryUnreachable { .. })) => {
                Some((Instant::now(), e.clone()))
            }
            _ => None,
        };
    }

    fn network_error(
        &self,
        e: &git2::Error,
        creds: &Credentials,
        asked: u32,
        operation: &str,
    ) -> GitError {
        auth::network_error(e, &self.key.url, creds, asked, operation, &self.opts)
    }

    /// Fetches the branch into the tracking ref; returns its commit (`None`: no such branch).
    fn fetch(&self, repo: &Repository, creds: &Credentials) -> Result<Option<Oid>, GitError> {
        if let Some(err) = self.cooling_down() {
            debug!(repo = %self.url(), "fetch skipped: the server failed moments ago");
            return Err(err);
        }
        // A branch git cannot name would fail the fetch as a local error: a corrupt cache.
        if !git2::Reference::is_valid_name(&format!("refs/heads/{}", self.key.branch)) {
            return Err(self.branch_not_found());
        }
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        let host = host_of(&self.key.url);
        let asked = Cell::new(0);
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(auth::callbacks(creds, &host, &asked));
        fo.download_tags(AutotagOption::None);
        fo.update_fetchhead(false);
        let tracking = self.tracking_ref();
        if let Ok(mut r) = repo.find_reference(&tracking) {
            let _ = r.delete();
        }
        let mut remote = repo
            .remote_anonymous(&self.key.url)
            .map_err(|e| self.network_error(&e, creds, 0, "fetch"))?;
        let refspec = format!("+refs/heads/{b}:{tracking}", b = self.key.branch);
        let res = remote.fetch(&[refspec.as_str()], Some(&mut fo), None);
        drop(fo);
        if let Err(e) = res {
            let err = match self.network_error(&e, creds, asked.get(), "fetch") {
                // Not the network, not the server: the cache could not take what came.
                GitError::GitFailed { message } => GitError::CacheCorrupt { message },
                other => other,
            };
            self.note_network(Some(&err));
            return Err(err);
        }
        self.note_network(None);
        self.synced.set(Some(Instant::now()));
        match repo.find_reference(&tracking) {
            Ok(r) => Ok(r.target()),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(corrupt(e)),
        }
    }

    fn submit_batch(&self, creds: &Credentials, changes: Vec<(Change, Reply)>) {
        let (changes, replies): (Vec<Change>, Vec<Reply>) = changes.into_iter().unzip();
        let results = self.with_repo(|repo| self.commit_and_push(repo, creds, &changes));
        match results {
            Ok(results) => {
                for (reply, res) in replies.into_iter().zip(results) {
                    let _ = reply.send(res);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Builds one commit per change on the branch head and pushes them at once; on a
    /// rejected push fetches and rebuilds them all on the new head. Returns one result per
    /// change; an error for all of them only when the push itself failed or the cache is
    /// corrupt (then with_repo retries on a fresh clone).
    fn commit_and_push(
        &self,
        repo: &Repository,
        creds: &Credentials,
        changes: &[Change],
    ) -> Result<Vec<Result<Outcome, GitError>>, GitError> {
        let mut backoff = self.opts.push_backoff;
        let mut attempt = 0;
        // Optimistic first try: build on the cached head without fetching. A stale head makes
        // the push fail as non-fast-forward and the batch is rebuilt on a fresh fetch; a
        // batch that changes nothing on the cached head is checked again on a fresh one.
        let mut cached = repo
            .find_reference(&self.tracking_ref())
            .ok()
            .and_then(|r| r.target());
        loop {
            let optimistic = cached.is_some();
            let head = match cached.take() {
                Some(head) => head,
                None => match self.fetch(repo, creds)? {
                    Some(head) => head,
                    None => return Err(self.branch_not_found()),
                },
            };
            let (results, tip) = self.build(repo, head, changes)?;
            if tip == head {
                if optimistic {
                    continue;
                }
                return Ok(results);
            }
            attempt += 1;
            if let Some(hook) = &self.opts.before_push {
                hook(attempt);
            }
            match self.push(repo, creds, tip) {
                Ok(()) => {
                    self.stats.pushes.fetch_add(1, Ordering::Relaxed);
                    let committed = results
                        .iter()
                        .filter(|r| matches!(r, Ok(Outcome::Committed { .. })))
                        .count();
                    self.stats
                        .commits
                        .fetch_add(committed as u64, Ordering::Relaxed);
                    let _ = repo.reference(&self.tracking_ref(), tip, true, "pushed");
                    self.synced.set(Some(std::time::Instant::now()));
                    info!(repo = %self.url(), commits = committed, head = %tip, "pushed");
                    return Ok(results);
                }
                Err(PushError::Rejected(message)) => {
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    if attempt >= self.opts.push_attempts {
                        return Err(GitError::PushRejected {
                            url: self.url(),
                            attempts: attempt,
                            message,
                        });
                    }
                    self.stats.push_retries.fetch_add(1, Ordering::Relaxed);
                    debug!(repo = %self.url(), attempt, %message, "push rejected; rebuilding on the new head");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(PushError::Failed(e)) => return Err(e),
            }
        }
    }

    /// Applies each change on top of the previous one; returns the per-change results and
    /// the new tip (== head when nothing changed). A change with a per-change error is
    /// skipped: its result is the error and the next change builds on the same tip.
    fn build(
        &self,
        repo: &Repository,
        head: Oid,
        changes: &[Change],
    ) -> Result<(Vec<Result<Outcome, GitError>>, Oid), GitError> {
        let mut tip = head;
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            match self.commit_one(repo, tip, change) {
                Err(e) if e.is_per_change() => {
                    debug!(repo = %self.url(), release = %change.release, error = %e, "change refused");
                    results.push(Err(e));
                }
                Err(e) => return Err(e),
                Ok(None) => {
                    self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
                    let path = format!("{}/{}", change.env_path, change.app);
                    let commit = last_change(repo, tip, &path, self.opts.history_depth);
                    results.push(Ok(Outcome::Unchanged {
                        commit: commit.to_string(),
                    }));
                }
                Ok(Some(oid)) => {
                    results.push(Ok(Outcome::Committed {
                        commit: oid.to_string(),
                    }));
                    tip = oid;
                }
            }
        }
        Ok((results, tip))
    }

    /// Commits one change on `tip`; `None` when it changes nothing.
    fn commit_one(
        &self,
        repo: &Repository,
        tip: Oid,
        change: &Change,
    ) -> Result<Option<Oid>, GitError> {
        let sig = signature(&change.author)?;
        let parent = repo.find_commit(tip).map_err(corrupt)?;
        let base = parent.tree().map_err(corrupt)?;
        let Some(new_tree) = apply(repo, &base, change, &self.loose)? else {
            return Ok(None);
        };
        let tree = repo.find_tree(new_tree).map_err(corrupt)?;
        let oid = repo
            .commit(None, &sig, &sig, &change.message(), &tree, &[&parent])
            .map_err(corrupt)?;
        self.loose.set(self.loose.get() + 1);
        Ok(Some(oid))
    }

    fn push(&self, repo: &Repository, creds: &Credentials, tip: Oid) -> Result<(), PushError> {
        if let Some(err) = self.cooling_down() {
            debug!(repo = %self.url(), "push skipped: the server failed moments ago");
            return Err(PushError::Failed(err));
        }
        repo.reference(PUSH_REF, tip, true, "push")
            .map_err(|e| PushError::Failed(corrupt(e)))?;
        let host = host_of(&self.key.url);
        let asked = Cell::new(0);
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let mut cb = auth::callbacks(creds, &host, &asked);
        cb.push_update_reference(|_refname, status| {
            if let Some(msg) = status {
                *rejected.borrow_mut() = Some(msg.to_string());
            }
            Ok(())
        });
        let mut po = PushOptions::new();
        po.remote_callbacks(cb);
        let mut remote = repo
            .remote_anonymous(&self.key.url)
            .map_err(|e| PushError::Failed(self.network_error(&e, creds, 0, "push")))?;
        let refspec = format!("{PUSH_REF}:refs/heads/{}", self.key.branch);
        let res = remote.push(&[refspec.as_str()], Some(&mut po));
        drop(po);
        if let Some(msg) = rejected.borrow().clone() {
            self.note_network(None);
            return Err(PushError::Rejected(msg));
        }
        match res {
            Ok(()) => {
                self.note_network(None);
                Ok(())
            }
            Err(e) if e.code() == ErrorCode::NotFastForward || is_rejection(e.message()) => {
                self.note_network(None);
                Err(PushError::Rejected(redact_text(e.message())))
            }
            Err(e) => {
                let err = match self.network_error(&e, creds, asked.get(), "push") {
                    // Packing what we push failed: objects the cache must have are missing.
                    GitError::GitFailed { message } if is_storage(e.class()) => {
                        GitError::CacheCorrupt { message }
                    }
                    other => other,
                };
                self.note_network(Some(&err));
                Err(PushError::Failed(err))
            }
        }
    }
}

/// Error classes of libgit2's local storage.
fn is_storage(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Odb
            | ErrorClass::Object
            | ErrorClass::Zlib
            | ErrorClass::Repository
            | ErrorClass::Reference
            | ErrorClass::Filesystem
    )
}

/// The signature of a commit by `author`, now.
fn signature(author: &Author) -> Result<Signature<'static>, GitError> {
    let who = format!("{:?} <{:?}>", author.name, author.email);
    if [&author.name, &author.email]
        .iter()
        .any(|s| s.chars().any(char::is_control))
    {
        return Err(GitError::InvalidAuthor {
            message: format!("{who} contains a control character such as a newline"),
        });
    }
    Signature::now(&author.name, &author.email).map_err(|e| GitError::InvalidAuthor {
        message: format!("{who}: {}", e.message()),
    })
}

fn is_rejection(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("non-fast")
        || m.contains("fetch first")
        || m.contains("rejected")
        || m.contains("not fast-forward")
        || m.contains("non-fastforward")
}

/// Applies one change to a tree; `None` when the result equals the base. `written`
/// counts the objects written.
pub fn apply(
    repo: &Repository,
    base: &git2::Tree<'_>,
    change: &Change,
    written: &Cell<u64>,
) -> Result<Option<Oid>, GitError> {
    let env_parts = components(&change.env_path)?;
    let app_parts = components(&change.app)?;
    if app_parts.len() != 1 {
        return Err(GitError::InvalidPath {
            path: change.app.clone(),
            message: "an app is one folder name".into(),
        });
    }
    let mut app_path: Vec<&str> = env_parts.clone();
    app_path.push(app_parts[0]);
    let app_folder = app_path.join("/");
    let entry = match &change.files {
        Some(files) if !files.is_empty() => {
            let id = tree::write_files(repo, files, written).map_err(|e| match e {
                GitError::InvalidPath { path, message } => GitError::InvalidPath {
                    path: format!("{app_folder}/{path}"),
                    message,
                },
                other => other,
            })?;
            Some((id, FileMode::Tree))
        }
        _ => None,
    };
    let root = tree::upsert(repo, Some(base), &app_path, entry, written)?;
    let empty = || {
        written.set(written.get() + 1);
        repo.treebuilder(None)
            .and_then(|b| b.write())
            .map_err(corrupt)
    };
    let root_tree = repo
        .find_tree(match root {
            Some(r) => r,
            None => empty()?,
        })
        .map_err(corrupt)?;
    let kpath = format!("{}/kustomization.yaml", change.env_path);
    let existing = tree::read_file(repo, &root_tree, &kpath)?;
    let new_root = match tree::environment_kustomization(
        &kpath,
        existing.as_deref(),
        &change.app,
        change
            .files
            .as_ref()
            .map(|_| change.entry.as_deref().unwrap_or(&change.app)),
    )? {
        Some(bytes) => {
            let blob = repo.blob(&bytes).map_err(corrupt)?;
            written.set(written.get() + 1);
            let mut kparts = env_parts.clone();
            kparts.push("kustomization.yaml");
            match tree::upsert(
                repo,
                Some(&root_tree),
                &kparts,
                Some((blob, FileMode::Blob)),
                written,
            )? {
                Some(r) => r,
                None => empty()?,
            }
        }
        None => root_tree.id(),
    };
    Ok((new_root != base.id()).then_some(new_root))
}

/// The oldest commit, going back from `from` along first parents, in which the entry at
/// `path` already had its current id: the commit that produced it.
fn last_change(repo: &Repository, from: Oid, path: &str, depth: usize) -> Oid {
    let id_at = |c: &git2::Commit<'_>| c.tree().ok().and_then(|t| tree::entry_id(&t, path));
    let Ok(mut commit) = repo.find_commit(from) else {
        return from;
    };
    let target = id_at(&commit);
    for _ in 0..depth {
        let Ok(parent) = commit.parent(0) else {
            return commit.id();
        };
        if id_at(&parent) != target {
            return commit.id();
        }
        commit = parent;
    }
    from
}

fn remove_locks(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| {
                n == "refs" || n == "remotes" || n == "origin" || n == "heads" || n == "tumbler"
            }) {
                remove_locks(&p);
            }
        } else if p.extension().is_some_and(|x| x == "lock") {
            let _ = std::fs::remove_file(&p);
        }
    }
}

fn oid(hex: &str) -> Result<Oid, GitError> {
    Oid::from_str(hex).map_err(|_| GitError::GitFailed {
        message: format!("{hex:?} is not a commit id"),
    })
}

/// Any libgit2 error, for `GitFailed`.
pub(super) fn git(e: git2::Error) -> GitError {
    GitError::GitFailed {
        message: redact_text(e.message()),
    }
}

/// A libgit2 error reading or writing what the cache must hold (objects, refs).
pub(super) fn corrupt(e: git2::Error) -> GitError {
    GitError::CacheCorrupt {
        message: redact_text(e.message()),
    }
}
