//! A batch of submits: one commit per change on the branch head, one push for them all,
//! rebuilt on the new head when the push is rejected.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

use git2::{FileMode, Oid, Repository, Signature};
use tracing::{debug, info};

use super::remote::PushError;
use super::{Reply, Worker, corrupt};
use crate::gitops::claim::{self, Claim};
use crate::gitops::tree::{self, components};
use crate::gitops::{Author, Change, Credentials, GitError, Outcome};

impl Worker {
    pub(super) fn submit_batch(&self, creds: &Credentials, changes: Vec<(Change, Reply)>) {
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

    /// Commits one change on `tip`; `None` when it changes nothing, or is a removal by a
    /// Release that does not own the folder. Refuses a folder Tumbler did not write or
    /// another Release owns (see `claim::check`).
    fn commit_one(
        &self,
        repo: &Repository,
        tip: Oid,
        change: &Change,
    ) -> Result<Option<Oid>, GitError> {
        let sig = signature(&change.author)?;
        let parent = repo.find_commit(tip).map_err(corrupt)?;
        let base = parent.tree().map_err(corrupt)?;
        if claim::check(repo, &base, change)? == Claim::Leave {
            debug!(repo = %self.url(), release = %change.release, app = %change.app, "not the folder's owner; nothing removed");
            return Ok(None);
        }
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
