//! The cached bare clone: opening (and creating) it, cloning it again when it is corrupt
//! or full of loose objects, and deleting it when the worker retires.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use git2::Repository;
use tracing::{debug, info, warn};

use super::{Worker, corrupt};
use crate::gitops::job::Queued;
use crate::gitops::writer::lock;
use crate::gitops::{GitError, redact_text};

impl Worker {
    /// Stops an idle worker: removes its handle from the registry and deletes its cache.
    /// Jobs are only sent with the registry locked, so once the queue is seen empty under
    /// the lock and the handle is gone, no job can reach this worker any more; a job that
    /// came just before is served instead. The cache folder is moved aside under the lock,
    /// so a successor for the same repository never sees it half deleted.
    pub(super) fn retire(&self, queue: &Receiver<Queued>) -> Option<Queued> {
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

    /// Deletes a cache holding more loose objects than `max_loose_objects`, so the next
    /// batch clones it again (one pack).
    pub(super) fn compact_if_overgrown(&self) {
        if self.loose.get() > self.opts.max_loose_objects {
            info!(repo = %self.url(), objects = self.loose.get(), "git cache holds many loose objects; cloning it again");
            self.stats.compactions.fetch_add(1, Ordering::Relaxed);
            self.discard_cache();
        }
    }

    /// Opens the cache (creating it), runs `f`; if the cache is corrupt (`CacheCorrupt`, and
    /// only then), deletes it and tries once more on a fresh clone, at most once a batch.
    pub(super) fn with_repo<T>(
        &self,
        f: impl Fn(&Repository) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
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
            let repo = Repository::open_bare(&self.dir).map_err(|e| GitError::CacheCorrupt {
                message: format!("the cache does not open: {}", redact_text(e.message())),
            })?;
            tune(&repo);
            return Ok(repo);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| GitError::GitFailed {
            message: format!("cannot create the cache folder: {e}"),
        })?;
        self.loose.set(0);
        self.synced.set(None);
        let repo = Repository::init_bare(&self.dir).map_err(corrupt)?;
        tune(&repo);
        Ok(repo)
    }
}

/// How much memory libgit2's pack builder may give the objects it compares when it looks for
/// deltas (`pack.windowMemory`). A batch's large objects are the versions of one environment
/// folder and its kustomization.yaml, each closest to the one before; the default (ten
/// objects, however large) compares each with ten such versions, most of the time of a push.
/// With this bound a large object is compared with the one or two before it, small ones
/// still with ten.
const PACK_WINDOW_MEMORY: i64 = 128 * 1024;

/// Sets the cache's own git configuration for packing (pushes, a batch's pack).
fn tune(repo: &Repository) {
    let Ok(mut config) = repo
        .config()
        .and_then(|c| c.open_level(git2::ConfigLevel::Local))
    else {
        return;
    };
    if config.get_i64("pack.windowMemory").ok() != Some(PACK_WINDOW_MEMORY) {
        let _ = config.set_i64("pack.windowMemory", PACK_WINDOW_MEMORY);
    }
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
