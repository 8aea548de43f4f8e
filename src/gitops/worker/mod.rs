//! One worker per repository, branch and credentials: a thread that owns the cached bare clone and serves jobs in
//! batches. Submits queued together become consecutive commits and one push.
//!
//! `cache` keeps the cached clone (opening, recloning a corrupt or overgrown one, retiring),
//! `remote` talks to the server (fetch, push, the cool-down after a failure), `read`
//! answers probes and reads, and `write` turns a batch of submits into commits and a push.

mod cache;
mod read;
mod remote;
mod write;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Instant;

use git2::Oid;
use tokio::sync::oneshot;

use super::job::{Job, Queued};
use super::writer::Registry;
use super::{
    Change, Credentials, GitError, Outcome, Stats, WorkerKey, WriterOptions, redact_text,
    short_hash,
};

pub struct Worker {
    /// The repository, branch and credentials' fingerprint this worker serves.
    key: WorkerKey,
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
    /// Objects written into the cache since it was created (loose, or a large batch's pack).
    loose: Cell<u64>,
    /// Whether the current batch already deleted the cache and cloned it again.
    recloned: Cell<bool>,
}

type Reply = oneshot::Sender<Result<Outcome, GitError>>;

impl Worker {
    pub fn new(
        key: WorkerKey,
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
        format!("refs/remotes/origin/{}", self.key.repo.branch)
    }

    fn url(&self) -> String {
        redact_text(&self.key.repo.url)
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

    fn serve(&self, batch: Vec<Queued>) {
        self.recloned.set(false);
        self.compact_if_overgrown();
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
        // A worker serves one fingerprint of credentials, so this is one group; grouping by
        // the credentials themselves keeps a push to one identity all the same.
        while !submits.is_empty() {
            let creds = submits[0].0.clone();
            let (same, rest): (Vec<_>, Vec<_>) =
                submits.into_iter().partition(|(c, _, _)| *c == creds);
            submits = rest;
            let changes = same.into_iter().map(|(_, c, r)| (*c, r)).collect();
            self.submit_batch(&creds, changes);
        }
    }

    fn branch_not_found(&self) -> GitError {
        GitError::BranchNotFound {
            url: self.url(),
            branch: self.key.repo.branch.clone(),
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
