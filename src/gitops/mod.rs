//! The git writer: one worker per repository (URL + branch) and credentials owning a cached
//! bare clone, trees built in memory, one commit per change, batched pushes, and the release
//! history read back from commit trailers. Talks only to git, never to Kubernetes.
//!
//! libgit2 is kept on a short leash: a worker opens its repository per batch and drops it
//! afterwards, holds nothing per Release, and a cache that is corrupt (and only then) is
//! deleted and cloned again rather than repaired.
//!
//! Nothing one input or one server does can stall the rest: a change that cannot be
//! written (a path git refuses, a broken kustomization.yaml, a bad author, a folder Tumbler
//! did not write or another Release owns) fails alone and the rest of its batch is pushed;
//! network operations have connect and I/O timeouts and every call a deadline
//! (`WriterOptions::ask_timeout`); each repository has its own worker thread with a bounded
//! queue; a server that just failed is not asked again during a short cool-down; idle workers
//! stop and delete their cache; a cache grown full of loose objects is cloned again.

mod auth;
mod change;
mod claim;
pub mod diff;
mod edit;
mod error;
mod history;
mod job;
mod log_index;
mod options;
mod tree;
mod worker;
mod writer;

use std::collections::BTreeMap;
use std::time::Duration;

pub use change::{Author, Change, ChangeKind, Credentials, Outcome};
pub use claim::recorded_owner;
pub use error::{GitError, redact_text, redact_url};
pub use history::{LogEntry, file_at, is_ancestor, log};
pub use options::{BeforePush, Stats, WriterOptions};
pub use writer::Writer;

/// Which repository and branch a worker owns.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RepoKey {
    pub url: String,
    pub branch: String,
}

/// Which worker serves a job: the repository and branch, and a fingerprint of the
/// credentials (see [`Credentials::fingerprint`]). Two Environments naming the same
/// repository with different credentials get two workers and two caches, so a read never
/// answers from a cache that other credentials filled. No `Debug`: nothing logs it.
#[derive(Clone, Hash, PartialEq, Eq)]
pub(crate) struct WorkerKey {
    pub repo: RepoKey,
    pub creds: [u8; 32],
}

impl WorkerKey {
    pub fn new(repo: RepoKey, creds: &Credentials) -> Self {
        WorkerKey {
            repo,
            creds: creds.fingerprint(),
        }
    }
}

/// The files of an app folder, relative to it.
pub type AppFiles = BTreeMap<String, Vec<u8>>;

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The name of a worker's cache folder (and thread): a short hash of the repository, the
/// branch and the credentials' fingerprint.
fn short_hash(key: &WorkerKey) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{}\n{}\n", key.repo.url, key.repo.branch));
    h.update(key.creds);
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests;
