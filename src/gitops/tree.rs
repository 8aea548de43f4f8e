//! Tree editing in memory: write an app folder from files, replace or remove it inside a
//! tree, and keep the environment's kustomization.yaml listing the app folders.

use std::collections::BTreeMap;

use git2::{FileMode, Oid, Repository, Tree};

use super::GitError;

fn git_err(e: git2::Error) -> GitError {
    GitError::GitFailed {
        message: e.message().to_string(),
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

/// Writes a tree holding `files` (paths relative to it); returns its id.
pub fn write_files(repo: &Repository, files: &BTreeMap<String, Vec<u8>>) -> Result<Oid, GitError> {
    // Group by first component; recurse into folders.
    let mut here: BTreeMap<&str, Oid> = BTreeMap::new();
    let mut below: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (path, bytes) in files {
        let parts = components(path)?;
        if parts.len() == 1 {
            here.insert(parts[0], repo.blob(bytes).map_err(git_err)?);
        } else {
            let rest = parts[1..].join("/");
            below
                .entry(parts[0])
                .or_default()
                .insert(rest, bytes.clone());
        }
    }
    let mut builder = repo.treebuilder(None).map_err(git_err)?;
    for (name, oid) in here {
        builder
            .insert(name, oid, FileMode::Blob.into())
            .map_err(git_err)?;
    }
    for (name, sub) in below {
        let oid = write_files(repo, &sub)?;
        builder
            .insert(name, oid, FileMode::Tree.into())
            .map_err(git_err)?;
    }
    builder.write().map_err(git_err)
}

/// Puts `entry` (an id and mode) at `path` inside `base`, or removes what is there when
/// `entry` is `None`; folders left empty are removed. Returns the new root tree.
pub fn upsert(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    path: &[&str],
    entry: Option<(Oid, FileMode)>,
) -> Result<Option<Oid>, GitError> {
    let mut builder = repo.treebuilder(base).map_err(git_err)?;
    let (name, rest) = path.split_first().expect("non-empty path");
    if rest.is_empty() {
        match entry {
            Some((oid, mode)) => {
                builder.insert(name, oid, mode.into()).map_err(git_err)?;
            }
            None => {
                if builder.get(name).map_err(git_err)?.is_some() {
                    builder.remove(name).map_err(git_err)?;
                }
            }
        }
    } else {
        let sub = match builder.get(name).map_err(git_err)? {
            Some(e) if e.kind() == Some(git2::ObjectType::Tree) => {
                Some(repo.find_tree(e.id()).map_err(git_err)?)
            }
            _ => None,
        };
        match upsert(repo, sub.as_ref(), rest, entry)? {
            Some(oid) => {
                builder
                    .insert(name, oid, FileMode::Tree.into())
                    .map_err(git_err)?;
            }
            None => {
                if builder.get(name).map_err(git_err)?.is_some() {
                    builder.remove(name).map_err(git_err)?;
                }
            }
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    builder.write().map(Some).map_err(git_err)
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

/// Every file under the folder `path` of `tree`, relative to it.
pub fn read_folder(
    repo: &Repository,
    tree: &Tree<'_>,
    path: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let folder = repo.find_tree(entry.id()).ok()?;
    let mut files = BTreeMap::new();
    folder
        .walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() == Some(git2::ObjectType::Blob)
                && let (Ok(name), Ok(blob)) = (e.name(), repo.find_blob(e.id()))
            {
                files.insert(format!("{dir}{name}"), blob.content().to_vec());
            }
            git2::TreeWalkResult::Ok
        })
        .ok()?;
    Some(files)
}

/// The environment's kustomization.yaml after adding or removing one app. `entry` is how the
/// app is listed (its folder, or, in per-app Flux mode, its Flux Kustomization file);
/// `None` removes the app in any form. Everything a person wrote is kept; only the app's
/// line in `resources` changes, and only when it must (`Ok(None)`: no change needed).
pub fn environment_kustomization(
    existing: Option<&[u8]>,
    app: &str,
    entry: Option<&str>,
) -> Result<Option<Vec<u8>>, GitError> {
    let mut doc: serde_json::Value = match existing {
        Some(bytes) if !bytes.iter().all(|b| b.is_ascii_whitespace()) => {
            serde_saphyr::from_slice(bytes).map_err(|e| GitError::GitFailed {
                message: format!(
                    "the environment's kustomization.yaml is not valid YAML ({e}); fix it by hand"
                ),
            })?
        }
        _ => {
            serde_json::json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []})
        }
    };
    let Some(map) = doc.as_object_mut() else {
        return Err(GitError::GitFailed {
            message: "the environment's kustomization.yaml is not a mapping; fix it by hand".into(),
        });
    };
    let resources = map
        .entry("resources")
        .or_insert_with(|| serde_json::json!([]));
    let Some(list) = resources.as_array_mut() else {
        return Err(GitError::GitFailed {
            message: "`resources` in the environment's kustomization.yaml is not a list".into(),
        });
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
    if existing.is_some() && *list == before {
        return Ok(None);
    }
    let text = serde_saphyr::to_string(&doc).map_err(|e| GitError::GitFailed {
        message: e.to_string(),
    })?;
    Ok(Some(text.into_bytes()))
}
