//! The writer's errors, and the redaction that keeps credentials out of their messages.

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
    #[error(
        "the folder {path} was not written by Tumbler; it is never replaced: remove it by hand or choose another app name"
    )]
    FolderNotManaged { path: String },
    #[error(
        "the folder {path} belongs to Release {owner}; choose another spec.app or delete that Release"
    )]
    FolderOwned { path: String, owner: String },
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
            GitError::FolderNotManaged { .. } => "FolderNotManaged",
            GitError::FolderOwned { .. } => "AppConflict",
            GitError::CacheCorrupt { .. } => "GitCacheCorrupt",
            GitError::Busy { .. } => "GitBusy",
            GitError::WorkerGone { .. } | GitError::GitFailed { .. } => "GitFailed",
        }
    }

    /// Whether only a person can fix this (credentials, branch, paths, the repository's
    /// kustomization.yaml, the author, a folder someone else owns); retrying without a
    /// change does not help.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            GitError::AuthenticationFailed { .. }
                | GitError::BranchNotFound { .. }
                | GitError::InvalidPath { .. }
                | GitError::InvalidKustomization { .. }
                | GitError::InvalidAuthor { .. }
                | GitError::FolderNotManaged { .. }
                | GitError::FolderOwned { .. }
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
                | GitError::FolderNotManaged { .. }
                | GitError::FolderOwned { .. }
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
