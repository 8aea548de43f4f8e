//! A batch of submits: one commit per change on the branch head, one push for them all,
//! rebuilt on the new head when the push is rejected.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use git2::{Odb, Oid, Repository, Signature};
use tracing::{debug, info, warn};

use super::remote::PushError;
use super::{Reply, Worker, corrupt};
use crate::gitops::claim::Claim;
use crate::gitops::edit::Trees;
use crate::gitops::tree;
use crate::gitops::{Author, Change, Credentials, GitError, Outcome};

/// Batches of at least this many changes are built in memory and kept as one pack; smaller
/// ones are written as loose objects, so a stream of single changes does not leave a pack
/// each in the cache.
const PACK_BATCH: usize = 8;

/// The priority of a batch's in-memory object store: above the cache's own (loose 1, packs
/// 2), so every object the batch writes goes there.
const MEMPACK_PRIORITY: i32 = 1000;

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
        // A large batch writes its objects in memory (nothing reaches the cache before the
        // push is accepted) and, once pushed, into the cache as one pack.
        let odb = repo.odb().map_err(corrupt)?;
        let mempack = if changes.len() >= PACK_BATCH {
            Some(
                odb.add_new_mempack_backend(MEMPACK_PRIORITY)
                    .map_err(corrupt)?,
            )
        } else {
            None
        };
        loop {
            let optimistic = cached.is_some();
            let head = match cached.take() {
                Some(head) => head,
                None => match self.fetch(repo, creds)? {
                    Some(head) => head,
                    None => return Err(self.branch_not_found()),
                },
            };
            if let Some(mempack) = &mempack {
                // What an attempt the server rejected wrote is not needed any more.
                mempack.reset().map_err(corrupt)?;
            }
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
                    if mempack.is_some()
                        && let Err(e) = keep_pack(repo, &odb, head, tip)
                    {
                        // Pushed, but not in the cache: the next batch fetches it.
                        warn!(repo = %self.url(), error = %e.message(), "pushed commits not kept in the git cache");
                        self.synced.set(None);
                        return Ok(results);
                    }
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
        let mut trees = Trees::new(repo)?;
        for change in changes {
            match self.commit_one(repo, &mut trees, tip, change) {
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
        trees: &mut Trees<'_>,
        tip: Oid,
        change: &Change,
    ) -> Result<Option<Oid>, GitError> {
        let sig = signature(&change.author)?;
        let parent = repo.find_commit(tip).map_err(corrupt)?;
        let base = parent.tree_id();
        if trees.claim(base, change)? == Claim::Leave {
            debug!(repo = %self.url(), release = %change.release, app = %change.app, "not the folder's owner; nothing removed");
            return Ok(None);
        }
        let Some(new_tree) = trees.apply(base, change, &self.loose)? else {
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

/// Writes the objects of the commits after `head` up to `tip` (from the batch's in-memory
/// store) into the cache as one pack.
fn keep_pack(repo: &Repository, odb: &Odb<'_>, head: Oid, tip: Oid) -> Result<(), git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.hide(head)?;
    let mut builder = repo.packbuilder()?;
    builder.set_threads(0);
    builder.insert_walk(&mut walk)?;
    let mut pack = odb.packwriter()?;
    let mut failed = None;
    let res = builder.foreach(|chunk| match pack.write_all(chunk) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    });
    if let Some(e) = failed {
        return Err(git2::Error::from_str(&e.to_string()));
    }
    res?;
    pack.commit()?;
    Ok(())
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
