//! Talking to the server: fetching the branch, pushing a new tip, and the cool-down after
//! a network failure. Neither follows an HTTP redirect to another host, so credentials
//! reach the configured host only (libgit2 follows the first redirect anywhere by default;
//! with `RemoteRedirect::None` it still follows one to the same host name, any port).

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::time::Instant;

use git2::{
    AutotagOption, ErrorClass, ErrorCode, FetchOptions, Oid, PushOptions, RemoteRedirect,
    Repository,
};
use tracing::debug;

use super::{Worker, corrupt};
use crate::gitops::auth::{self, known_hosts_name};
use crate::gitops::{Credentials, GitError, redact_text};

const PUSH_REF: &str = "refs/tumbler/push";

pub(super) enum PushError {
    Rejected(String),
    Failed(GitError),
}

impl Worker {
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
        auth::network_error(e, &self.key.repo.url, creds, asked, operation, &self.opts)
    }

    /// Fetches the branch into the tracking ref; returns its commit (`None`: no such branch).
    pub(super) fn fetch(
        &self,
        repo: &Repository,
        creds: &Credentials,
    ) -> Result<Option<Oid>, GitError> {
        if let Some(err) = self.cooling_down() {
            debug!(repo = %self.url(), "fetch skipped: the server failed moments ago");
            return Err(err);
        }
        // A branch git cannot name would fail the fetch as a local error: a corrupt cache.
        if !git2::Reference::is_valid_name(&format!("refs/heads/{}", self.key.repo.branch)) {
            return Err(self.branch_not_found());
        }
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        let host = known_hosts_name(&self.key.repo.url);
        let asked = Cell::new(0);
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(auth::callbacks(creds, &host, &asked));
        // Credentials go to the configured host only: no redirect elsewhere, not even the
        // first one (the push below does the same).
        fo.follow_redirects(RemoteRedirect::None);
        fo.download_tags(AutotagOption::None);
        fo.update_fetchhead(false);
        let tracking = self.tracking_ref();
        if let Ok(mut r) = repo.find_reference(&tracking) {
            let _ = r.delete();
        }
        let mut remote = repo
            .remote_anonymous(&self.key.repo.url)
            .map_err(|e| self.network_error(&e, creds, 0, "fetch"))?;
        let refspec = format!("+refs/heads/{b}:{tracking}", b = self.key.repo.branch);
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

    pub(super) fn push(
        &self,
        repo: &Repository,
        creds: &Credentials,
        tip: Oid,
    ) -> Result<(), PushError> {
        if let Some(err) = self.cooling_down() {
            debug!(repo = %self.url(), "push skipped: the server failed moments ago");
            return Err(PushError::Failed(err));
        }
        repo.reference(PUSH_REF, tip, true, "push")
            .map_err(|e| PushError::Failed(corrupt(e)))?;
        let host = known_hosts_name(&self.key.repo.url);
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
        po.follow_redirects(RemoteRedirect::None);
        po.packbuilder_parallelism(0);
        let mut remote = repo
            .remote_anonymous(&self.key.repo.url)
            .map_err(|e| PushError::Failed(self.network_error(&e, creds, 0, "push")))?;
        let refspec = format!("{PUSH_REF}:refs/heads/{}", self.key.repo.branch);
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

fn is_rejection(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("non-fast")
        || m.contains("fetch first")
        || m.contains("rejected")
        || m.contains("not fast-forward")
        || m.contains("non-fastforward")
}
