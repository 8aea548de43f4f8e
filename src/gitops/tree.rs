//! Tree editing in memory: write an app folder from files, replace or remove it inside a
//! tree, and keep the environment's kustomization.yaml listing the app folders.

use std::cell::Cell;
use std::collections::BTreeMap;

use git2::{ErrorCode, FileMode, Oid, Repository, Tree};

use super::GitError;
use super::worker::corrupt;

/// An error of a tree builder's `get`/`insert`/`remove` for the entry at `path`: libgit2
/// refused the name (`.git.`, `git~1`, `.GIT`, a NUL, ...), so the path is wrong, not the
/// cache; unless the entry's object is missing from the cache.
pub(super) fn refused(path: &str, e: git2::Error) -> GitError {
    if e.message().contains("invalid object") || e.message().contains("null OID") {
        return corrupt(e);
    }
    GitError::InvalidPath {
        path: path.to_string(),
        message: format!("git refuses this name ({})", e.message()),
    }
}

/// Splits and checks a repository-relative path: no empty, `.` or `..` segments, no
/// leading `/`.
pub fn components(path: &str) -> Result<Vec<&str>, GitError> {
    let bad = |message: &str| GitError::InvalidPath {
        path: path.to_string(),
        message: message.to_string(),
    };
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    if path.starts_with('/') {
        return Err(bad("absolute paths are not allowed"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts {
        if p.is_empty() || *p == "." || *p == ".." {
            return Err(bad("empty, `.` and `..` segments are not allowed"));
        }
        if *p == ".git" {
            return Err(bad("`.git` is not allowed"));
        }
    }
    Ok(parts)
}

/// Writes a tree holding `files` (paths relative to it); returns its id. `written` counts
/// the objects written.
pub fn write_files(
    repo: &Repository,
    files: &BTreeMap<String, Vec<u8>>,
    written: &Cell<u64>,
) -> Result<Oid, GitError> {
    write_folder(repo, "", files, written)
}

fn write_folder(
    repo: &Repository,
    prefix: &str,
    files: &BTreeMap<String, Vec<u8>>,
    written: &Cell<u64>,
) -> Result<Oid, GitError> {
    // Group by first component; recurse into folders.
    let mut here: BTreeMap<&str, Oid> = BTreeMap::new();
    let mut below: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (path, bytes) in files {
        let full = format!("{prefix}{path}");
        let parts = components(path).map_err(|e| match e {
            GitError::InvalidPath { message, .. } => GitError::InvalidPath {
                path: full.clone(),
                message,
            },
            other => other,
        })?;
        match parts.split_first() {
            Some((name, [])) => {
                here.insert(name, repo.blob(bytes).map_err(corrupt)?);
                written.set(written.get() + 1);
            }
            Some((name, rest)) => {
                below
                    .entry(name)
                    .or_default()
                    .insert(rest.join("/"), bytes.clone());
            }
            None => {}
        }
    }
    let mut builder = repo.treebuilder(None).map_err(corrupt)?;
    for (name, oid) in here {
        builder
            .insert(name, oid, FileMode::Blob.into())
            .map_err(|e| refused(&format!("{prefix}{name}"), e))?;
    }
    for (name, sub) in below {
        let folder = format!("{prefix}{name}/");
        let oid = write_folder(repo, &folder, &sub, written)?;
        builder
            .insert(name, oid, FileMode::Tree.into())
            .map_err(|e| refused(folder.trim_end_matches('/'), e))?;
    }
    written.set(written.get() + 1);
    builder.write().map_err(corrupt)
}

/// Puts `entry` (an id and mode) at `path` inside `base`, or removes what is there when
/// `entry` is `None`; folders left empty are removed. Returns the new root tree. `written`
/// counts the objects written. (The writer edits trees with `edit::Trees`; tests use this
/// to commit as someone else would, and to check that both write the same trees.)
#[cfg(test)]
pub fn upsert(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    path: &[&str],
    entry: Option<(Oid, FileMode)>,
    written: &Cell<u64>,
) -> Result<Option<Oid>, GitError> {
    upsert_below(repo, base, path, 0, entry, written)
}

/// `upsert` of `path[depth..]` in `base`, the tree at `path[..depth]`.
#[cfg(test)]
fn upsert_below(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    path: &[&str],
    depth: usize,
    entry: Option<(Oid, FileMode)>,
    written: &Cell<u64>,
) -> Result<Option<Oid>, GitError> {
    let Some((name, rest)) = path.get(depth..).and_then(|p| p.split_first()) else {
        return Err(GitError::InvalidPath {
            path: path.join("/"),
            message: "empty path".into(),
        });
    };
    let here = || path[..=depth].join("/");
    let mut builder = repo.treebuilder(base).map_err(corrupt)?;
    let existing = builder.get(name).map_err(|e| refused(&here(), e))?;
    let new = if rest.is_empty() {
        entry
    } else {
        let sub = match &existing {
            Some(e) if e.kind() == Some(git2::ObjectType::Tree) => {
                Some(repo.find_tree(e.id()).map_err(corrupt)?)
            }
            _ => None,
        };
        upsert_below(repo, sub.as_ref(), path, depth + 1, entry, written)?
            .map(|oid| (oid, FileMode::Tree))
    };
    let existed = existing.is_some();
    drop(existing);
    match new {
        Some((oid, mode)) => {
            builder
                .insert(name, oid, mode.into())
                .map_err(|e| refused(&here(), e))?;
        }
        None if existed => {
            builder.remove(name).map_err(|e| refused(&here(), e))?;
        }
        None => {}
    }
    if builder.is_empty() {
        return Ok(None);
    }
    written.set(written.get() + 1);
    builder.write().map(Some).map_err(corrupt)
}

/// The id of the entry at `path` in `tree`, if any.
pub fn entry_id(tree: &Tree<'_>, path: &str) -> Option<Oid> {
    tree.get_path(std::path::Path::new(path))
        .ok()
        .map(|e| e.id())
}

/// The bytes of the blob at `path` in `tree`, if any.
pub fn read_blob(repo: &Repository, tree: &Tree<'_>, path: &str) -> Option<Vec<u8>> {
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(blob.content().to_vec())
}

/// Every file under the folder `path` of `tree`, relative to it (`None`: no such folder).
pub fn read_folder(
    repo: &Repository,
    tree: &Tree<'_>,
    path: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, GitError> {
    let entry = match tree.get_path(std::path::Path::new(path)) {
        Ok(entry) => entry,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(corrupt(e)),
    };
    if entry.kind() != Some(git2::ObjectType::Tree) {
        return Ok(None);
    }
    let folder = repo.find_tree(entry.id()).map_err(corrupt)?;
    let mut files = BTreeMap::new();
    let mut failed = None;
    folder
        .walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() != Some(git2::ObjectType::Blob) {
                return git2::TreeWalkResult::Ok;
            }
            match repo.find_blob(e.id()) {
                Ok(blob) => {
                    let name = String::from_utf8_lossy(e.name_bytes());
                    files.insert(format!("{dir}{name}"), blob.content().to_vec());
                    git2::TreeWalkResult::Ok
                }
                Err(err) => {
                    failed = Some(err);
                    git2::TreeWalkResult::Abort
                }
            }
        })
        .or_else(|e| if failed.is_some() { Ok(()) } else { Err(e) })
        .map_err(corrupt)?;
    match failed {
        Some(e) => Err(corrupt(e)),
        None => Ok(Some(files)),
    }
}

/// An environment's kustomization.yaml (at `path`), parsed; a new one when there is none
/// or it is blank.
pub fn parse_kustomization(
    path: &str,
    existing: Option<&[u8]>,
) -> Result<serde_json::Value, GitError> {
    Ok(match existing {
        Some(bytes) if !bytes.iter().all(|b| b.is_ascii_whitespace()) => {
            serde_saphyr::from_slice(bytes).map_err(|e| GitError::InvalidKustomization {
                path: path.to_string(),
                message: format!("not valid YAML ({e})"),
            })?
        }
        _ => {
            serde_json::json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []})
        }
    })
}

/// Adds or removes one app in a parsed environment kustomization.yaml (`existed`: the file
/// is in the repository). `entry` is how the app is listed (its folder, or, in per-app Flux
/// mode, its Flux Kustomization file); `None` removes the app in any form. Everything a
/// person wrote is kept; only the app's line in `resources` changes, and only when it must.
/// Returns the new file (`Ok(None)`: no change needed).
pub fn edit_kustomization(
    path: &str,
    doc: &mut serde_json::Value,
    existed: bool,
    app: &str,
    entry: Option<&str>,
) -> Result<Option<Vec<u8>>, GitError> {
    let invalid = |message: String| GitError::InvalidKustomization {
        path: path.to_string(),
        message,
    };
    let Some(map) = doc.as_object_mut() else {
        return Err(invalid("not a mapping".into()));
    };
    let resources = map
        .entry("resources")
        .or_insert_with(|| serde_json::json!([]));
    let Some(list) = resources.as_array_mut() else {
        return Err(invalid("`resources` is not a list".into()));
    };
    // Any form Tumbler writes for this app: `app`, `./app`, `app/`, `app/<file>`.
    let is_app = |v: &serde_json::Value| {
        v.as_str().is_some_and(|s| {
            let s = s.trim_start_matches("./").trim_end_matches('/');
            s == app
                || s.strip_prefix(app)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let before: Vec<serde_json::Value> = list.clone();
    list.retain(|v| !is_app(v));
    if let Some(entry) = entry {
        list.push(serde_json::Value::String(entry.to_string()));
        list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    if existed && *list == before {
        return Ok(None);
    }
    let text = serde_saphyr::to_string(&*doc).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(text.into_bytes()))
}
