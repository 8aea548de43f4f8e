//! TEMPORARY compile stub (not committed).
use std::collections::BTreeMap;
use std::path::PathBuf;
#[derive(Clone, Debug)]
pub struct RepoKey {
    pub url: String,
    pub branch: String,
}
#[derive(Clone, Debug)]
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
pub struct Author {
    pub name: String,
    pub email: String,
}
pub enum ChangeKind {
    Release,
    Delete,
    Rollback { from: String },
}
pub struct Change {
    pub release: String,
    pub generation: i64,
    pub version: String,
    pub environment: String,
    pub env_path: String,
    pub app: String,
    pub files: Option<BTreeMap<String, Vec<u8>>>,
    pub author: Author,
    pub kind: ChangeKind,
}
#[derive(Debug)]
pub enum Outcome {
    Committed { commit: String },
    Unchanged { commit: String },
}
#[derive(Default)]
pub struct WriterOptions {}
#[derive(Clone)]
pub struct Writer {}
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("x")]
    X,
}
impl GitError {
    pub fn reason(&self) -> &'static str {
        "X"
    }
}
impl Writer {
    pub fn new(_c: PathBuf, _o: WriterOptions) -> Self {
        Writer {}
    }
    pub async fn submit(
        &self,
        _k: RepoKey,
        _c: Credentials,
        _ch: Change,
    ) -> Result<Outcome, GitError> {
        Err(GitError::X)
    }
    pub async fn probe(&self, _k: RepoKey, _c: Credentials) -> Result<String, GitError> {
        Err(GitError::X)
    }
    pub async fn read_app(
        &self,
        _k: RepoKey,
        _c: Credentials,
        _p: &str,
        _a: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, GitError> {
        Err(GitError::X)
    }
    pub fn is_ancestor(
        &self,
        _k: RepoKey,
        _c: Credentials,
        _a: &str,
        _d: &str,
    ) -> Result<bool, GitError> {
        Err(GitError::X)
    }
}
pub struct Stats;
impl Stats {
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![]
    }
    pub fn queue_depth(&self) -> u64 {
        0
    }
}
impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}
impl Writer {
    pub fn stats(&self) -> Stats {
        Stats
    }
}
