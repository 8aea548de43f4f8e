//! The release history, read back from git: Tumbler's commits carry trailers
//! (`Tumbler-Release`, `-Version`, `-App`, `-Path`, `-Action`, ...), so the log is a walk of
//! first parents that reads commit messages only — no tree diffs — and stays fast on long
//! histories. Anyone who can push can write such trailers, so readers name the committer
//! they trust (the Environment's commit author) and other commits are skipped.

use std::path::Path;

use git2::{Oid, Repository, Sort};

use super::worker::git;
use super::{Author, GitError, log_index};

/// One commit of the release log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    pub commit: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    pub author: String,
    pub app: String,
    pub environment: String,
    pub path: String,
    pub version: String,
    /// `<namespace>/<name>` of the Release that made the commit.
    pub release: String,
    pub generation: i64,
    /// `release`, `delete`, `rollback` or `promote`.
    pub action: String,
    /// The field manager that last changed the Release's spec (`Tumbler-Requested-By`;
    /// empty on commits made before Tumbler wrote it, and on deletions).
    pub requested_by: String,
    /// First line of the message.
    pub summary: String,
    /// `<namespace>/<name>@<version>` a promotion took its version from
    /// (`Tumbler-Promoted-From`); empty for other actions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub promoted_from: String,
}

/// Parses a Tumbler commit message; `None` for commits Tumbler did not make.
pub fn parse_message(message: &str) -> Option<(Vec<(String, String)>, String)> {
    if !message.contains("Tumbler-Release:") {
        return None;
    }
    let summary = message.lines().next().unwrap_or_default().to_string();
    let trailers = message
        .lines()
        .filter_map(|l| l.strip_prefix("Tumbler-"))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    Some((trailers, summary))
}

fn entry(commit: &git2::Commit<'_>) -> Option<LogEntry> {
    let (trailers, summary) = parse_message(commit.message().ok()?)?;
    let get = |k: &str| {
        trailers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let author = commit.author();
    Some(LogEntry {
        commit: commit.id().to_string(),
        time: commit.time().seconds(),
        author: format!(
            "{} <{}>",
            author.name().unwrap_or_default(),
            author.email().unwrap_or_default()
        ),
        app: get("App"),
        environment: get("Environment"),
        path: get("Path"),
        version: get("Version"),
        release: get("Release"),
        generation: get("Generation").parse().unwrap_or_default(),
        action: get("Action"),
        requested_by: get("Requested-By"),
        summary,
        promoted_from: get("Promoted-From"),
    })
}

/// Whether `commit` was committed by `who` (name and email as given).
fn committed_by(commit: &git2::Commit<'_>, who: &Author) -> bool {
    let c = commit.committer();
    c.name_bytes() == who.name.as_bytes() && c.email_bytes() == who.email.as_bytes()
}

/// The release log from `head` back, newest first: Tumbler's commits for the environment
/// folder `env_path` (all when `None`) and `app` (all when `None`), at most `limit`.
/// With `committer`, only commits whose committer is that identity count: trailers anyone
/// can write are trusted only from Tumbler's own commits.
///
/// The commits are chosen from the log index next to the clone (see `log_index`), so only
/// the commits listed are read; should the index fail (a commit of the history missing), the
/// first-parent walk answers, reading each commit.
pub fn log_from(
    repo: &Repository,
    head: Oid,
    env_path: Option<&str>,
    app: Option<&str>,
    limit: usize,
    committer: Option<&Author>,
) -> Result<Vec<LogEntry>, git2::Error> {
    let filter = log_index::Filter {
        env_path,
        app,
        committer: committer.map(|c| (c.name.as_bytes(), c.email.as_bytes())),
    };
    let Ok(oids) = log_index::select(repo, head, &filter, limit) else {
        return walk(repo, head, env_path, app, limit, committer);
    };
    let mut out = Vec::with_capacity(oids.len());
    for oid in oids {
        out.extend(matching(repo, oid, env_path, app, committer)?);
    }
    Ok(out)
}

/// The log entry of one commit, if it is Tumbler's (by `committer`, when given) for this
/// environment folder and app.
fn matching(
    repo: &Repository,
    oid: Oid,
    env_path: Option<&str>,
    app: Option<&str>,
    committer: Option<&Author>,
) -> Result<Option<LogEntry>, git2::Error> {
    let commit = repo.find_commit(oid)?;
    if committer.is_some_and(|who| !committed_by(&commit, who)) {
        return Ok(None);
    }
    Ok(entry(&commit)
        .filter(|e| env_path.is_none_or(|p| p == e.path) && app.is_none_or(|a| a == e.app)))
}

/// [`log_from`] by walking the first parents, reading every commit.
fn walk(
    repo: &Repository,
    head: Oid,
    env_path: Option<&str>,
    app: Option<&str>,
    limit: usize,
    committer: Option<&Author>,
) -> Result<Vec<LogEntry>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    walk.simplify_first_parent()?;
    walk.set_sorting(Sort::NONE)?;
    let mut out = vec![];
    for oid in walk {
        if out.len() >= limit {
            break;
        }
        out.extend(matching(repo, oid?, env_path, app, committer)?);
    }
    Ok(out)
}

/// The release log of a local clone (bare or not) at `rev` (e.g. `HEAD`, `origin/main`);
/// with `committer`, of that identity's commits only (see [`log_from`]).
pub fn log(
    repo_path: &Path,
    rev: &str,
    env_path: Option<&str>,
    app: Option<&str>,
    limit: usize,
    committer: Option<&Author>,
) -> Result<Vec<LogEntry>, GitError> {
    let repo = Repository::open(repo_path).map_err(git)?;
    let head = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(git)?
        .id();
    log_from(&repo, head, env_path, app, limit, committer).map_err(git)
}

/// A file at a commit of a local clone.
pub fn file_at(repo_path: &Path, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
    let repo = Repository::open(repo_path).map_err(git)?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(git)?
        .id();
    file_at_oid(&repo, commit, path)
}

pub fn file_at_oid(
    repo: &Repository,
    commit: Oid,
    path: &str,
) -> Result<Option<Vec<u8>>, GitError> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|_| GitError::GitFailed {
            message: format!("commit {commit} not found"),
        })?;
    Ok(super::tree::read_blob(repo, &tree, path))
}

/// Whether `ancestor` is `descendant` or an ancestor of it, in a local clone.
pub fn is_ancestor(repo_path: &Path, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
    let repo = Repository::open(repo_path).map_err(git)?;
    let a = repo.revparse_single(ancestor).map_err(git)?.id();
    let d = repo.revparse_single(descendant).map_err(git)?.id();
    Ok(a == d || repo.graph_descendant_of(d, a).map_err(git)?)
}
