//! The trees of one batch, kept in memory: each change of a batch edits the tree its
//! predecessor wrote, so the trees it touches are read from the cache once per batch and
//! edited in place rather than decoded and rebuilt from the object store for every commit.
//! The environment's kustomization.yaml is kept parsed the same way.
//!
//! Every tree is still written as a whole git object, byte for byte what libgit2's tree
//! builder writes (entries in git's order, modes as they were), so commits and trees are the
//! same as when each change was applied on its own.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashMap;

use git2::{FileMode, ObjectType, Odb, Oid, Repository};

use super::claim::{self, Claim, RECORD};
use super::tree::{self, components};
use super::worker::corrupt;
use super::{Change, GitError};

const DIR: i32 = 0o040000;
const TYPE_MASK: i32 = 0o170000;
const GITLINK: i32 = 0o160000;

/// One entry of a tree: a name, a raw mode (as the tree holds it) and an id.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Box<[u8]>,
    mode: i32,
    id: Oid,
}

impl Entry {
    fn is_dir(&self) -> bool {
        self.mode & TYPE_MASK == DIR
    }

    fn kind(&self) -> ObjectType {
        match self.mode & TYPE_MASK {
            DIR => ObjectType::Tree,
            GITLINK => ObjectType::Commit,
            _ => ObjectType::Blob,
        }
    }
}

/// Git's order of tree entries: by name, a folder's name followed by `/`.
fn order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> Ordering {
    let slash = |dir: bool| if dir { Some(&b'/') } else { None };
    a.iter()
        .chain(slash(a_dir))
        .cmp(b.iter().chain(slash(b_dir)))
}

fn entry_order(a: &Entry, b: &Entry) -> Ordering {
    order(&a.name, a.is_dir(), &b.name, b.is_dir())
}

/// The trees and environment kustomizations a batch read or wrote, by id.
pub struct Trees<'r> {
    repo: &'r Repository,
    odb: Odb<'r>,
    /// Entries of trees, in git's order. A tree being edited is taken out, so the cache
    /// holds the latest version of each folder rather than every version of the batch.
    trees: HashMap<Oid, Vec<Entry>>,
    /// Parsed kustomization.yaml files, by blob id; taken out while being edited.
    docs: HashMap<Oid, serde_json::Value>,
    buf: Vec<u8>,
}

impl<'r> Trees<'r> {
    pub fn new(repo: &'r Repository) -> Result<Self, GitError> {
        Ok(Trees {
            repo,
            odb: repo.odb().map_err(corrupt)?,
            trees: HashMap::new(),
            docs: HashMap::new(),
            buf: Vec::new(),
        })
    }

    fn load(&self, id: Oid) -> Result<Vec<Entry>, GitError> {
        let tree = self.repo.find_tree(id).map_err(corrupt)?;
        let mut entries: Vec<Entry> = tree
            .iter()
            .map(|e| Entry {
                name: e.name_bytes().into(),
                mode: e.filemode_raw(),
                id: e.id(),
            })
            .collect();
        // libgit2 sorts when it writes a tree; a tree written out of order elsewhere is
        // written back sorted, here as there.
        entries.sort_by(entry_order);
        Ok(entries)
    }

    /// The entries of tree `id`, to edit: taken out of the cache (or read).
    fn take(&mut self, id: Oid) -> Result<Vec<Entry>, GitError> {
        match self.trees.remove(&id) {
            Some(entries) => Ok(entries),
            None => self.load(id),
        }
    }

    /// The entries of tree `id`, to read.
    fn peek(&mut self, id: Oid) -> Result<&[Entry], GitError> {
        if !self.trees.contains_key(&id) {
            let entries = self.load(id)?;
            self.trees.insert(id, entries);
        }
        Ok(&self.trees[&id])
    }

    /// Writes a tree object of `entries` (in git's order) and keeps them under its id.
    fn write(&mut self, entries: Vec<Entry>, written: &Cell<u64>) -> Result<Oid, GitError> {
        self.buf.clear();
        for e in &entries {
            use std::io::Write;
            let _ = write!(self.buf, "{:o} ", e.mode);
            self.buf.extend_from_slice(&e.name);
            self.buf.push(0);
            self.buf.extend_from_slice(e.id.as_bytes());
        }
        let id = self
            .odb
            .write(ObjectType::Tree, &self.buf)
            .map_err(corrupt)?;
        written.set(written.get() + 1);
        self.trees.insert(id, entries);
        Ok(id)
    }

    /// The entry at `path` below tree `root`: its id and kind.
    fn lookup(&mut self, root: Oid, path: &[&str]) -> Result<Option<(Oid, ObjectType)>, GitError> {
        let mut here = (root, ObjectType::Tree);
        for name in path {
            if here.1 != ObjectType::Tree {
                return Ok(None);
            }
            let entries = self.peek(here.0)?;
            match entries.iter().find(|e| &*e.name == name.as_bytes()) {
                Some(e) => here = (e.id, e.kind()),
                None => return Ok(None),
            }
        }
        Ok(Some(here))
    }

    fn blob(&self, id: Oid) -> Result<Vec<u8>, GitError> {
        Ok(self.repo.find_blob(id).map_err(corrupt)?.content().to_vec())
    }

    /// Whether `change` may write its app folder in the tree `root` (see `claim::check`).
    pub fn claim(&mut self, root: Oid, change: &Change) -> Result<Claim, GitError> {
        let mut folder = components(&change.env_path)?;
        let app = components(&change.app)?;
        folder.extend(app);
        if self.lookup(root, &folder)?.is_none() {
            return Ok(Claim::Write);
        }
        folder.extend(RECORD.split('/'));
        let record = match self.lookup(root, &folder)? {
            Some((id, ObjectType::Blob)) => Some(self.blob(id)?),
            _ => None,
        };
        claim::decide(change, record.as_deref())
    }

    /// Puts `entry` at `path` below tree `base` (or removes what is there), like
    /// `tree::upsert`; returns the new root (`None`: nothing left).
    fn upsert(
        &mut self,
        base: Option<Oid>,
        path: &[&str],
        depth: usize,
        entry: Option<(Oid, i32)>,
        written: &Cell<u64>,
    ) -> Result<Option<Oid>, GitError> {
        let Some((name, rest)) = path.get(depth..).and_then(|p| p.split_first()) else {
            return Err(GitError::InvalidPath {
                path: path.join("/"),
                message: "empty path".into(),
            });
        };
        let here = || path[..=depth].join("/");
        if name.contains('\0') {
            return Err(GitError::InvalidPath {
                path: here(),
                message: "git refuses this name (it contains a NUL byte)".into(),
            });
        }
        let mut entries = match base {
            Some(id) => self.take(id)?,
            None => vec![],
        };
        let at = entries.iter().position(|e| &*e.name == name.as_bytes());
        let new = if rest.is_empty() {
            entry
        } else {
            let sub = at
                .map(|i| &entries[i])
                .filter(|e| e.kind() == ObjectType::Tree)
                .map(|e| e.id);
            match self.upsert(sub, path, depth + 1, entry, written) {
                Ok(new) => new.map(|id| (id, DIR)),
                Err(e) => {
                    if let Some(id) = base {
                        self.trees.insert(id, entries);
                    }
                    return Err(e);
                }
            }
        };
        let old = at.map(|i| (entries[i].id, entries[i].mode));
        if let (Some(id), true) = (base, old == new) {
            self.trees.insert(id, entries);
            return Ok(Some(id));
        }
        if let Some((id, mode)) = new {
            // libgit2's checks of a name (`.git`, `git~1`, ...) and of the object, as a tree
            // builder's insert makes them.
            let checked = self
                .repo
                .treebuilder(None)
                .and_then(|mut b| b.insert(name, id, mode).map(|_| ()));
            if let Err(e) = checked {
                if let Some(id) = base {
                    self.trees.insert(id, entries);
                }
                return Err(tree::refused(&here(), e));
            }
        }
        if let Some(i) = at {
            entries.remove(i);
        }
        if let Some((id, mode)) = new {
            let e = Entry {
                name: name.as_bytes().into(),
                mode,
                id,
            };
            let i = entries
                .binary_search_by(|x| entry_order(x, &e))
                .unwrap_or_else(|i| i);
            entries.insert(i, e);
        }
        if entries.is_empty() {
            return Ok(None);
        }
        self.write(entries, written).map(Some)
    }

    fn empty(&mut self, written: &Cell<u64>) -> Result<Oid, GitError> {
        self.write(vec![], written)
    }

    /// Applies one change to the tree `base`; `None` when the result equals the base.
    /// `written` counts the objects written.
    pub fn apply(
        &mut self,
        base: Oid,
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
                let id = tree::write_files(self.repo, files, written).map_err(|e| match e {
                    GitError::InvalidPath { path, message } => GitError::InvalidPath {
                        path: format!("{app_folder}/{path}"),
                        message,
                    },
                    other => other,
                })?;
                Some((id, i32::from(FileMode::Tree)))
            }
            _ => None,
        };
        let root = match self.upsert(Some(base), &app_path, 0, entry, written)? {
            Some(root) => root,
            None => self.empty(written)?,
        };
        let kpath = format!("{}/kustomization.yaml", change.env_path);
        let mut kparts = env_parts.clone();
        kparts.push("kustomization.yaml");
        let existing = match self.lookup(root, &kparts)? {
            Some((id, ObjectType::Blob)) => Some(id),
            _ => None,
        };
        let mut doc = match existing {
            Some(id) => match self.docs.remove(&id) {
                Some(doc) => doc,
                None => tree::parse_kustomization(&kpath, Some(&self.blob(id)?))?,
            },
            None => tree::parse_kustomization(&kpath, None)?,
        };
        let listed = change
            .files
            .as_ref()
            .map(|_| change.entry.as_deref().unwrap_or(&change.app));
        let edited =
            tree::edit_kustomization(&kpath, &mut doc, existing.is_some(), &change.app, listed)?;
        let new_root = match edited {
            Some(bytes) => {
                let blob = self.repo.blob(&bytes).map_err(corrupt)?;
                written.set(written.get() + 1);
                self.docs.insert(blob, doc);
                let mode = i32::from(FileMode::Blob);
                match self.upsert(Some(root), &kparts, 0, Some((blob, mode)), written)? {
                    Some(r) => r,
                    None => self.empty(written)?,
                }
            }
            None => {
                if let Some(id) = existing {
                    self.docs.insert(id, doc);
                }
                root
            }
        };
        Ok((new_root != base).then_some(new_root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_order_puts_a_folder_after_names_that_extend_it() {
        // "a-b" < "a/" (a folder) because '-' < '/'; a file "a" sorts before "a-b".
        assert_eq!(order(b"a", true, b"a-b", false), Ordering::Greater);
        assert_eq!(order(b"a", false, b"a-b", false), Ordering::Less);
        assert_eq!(order(b"a", false, b"a", true), Ordering::Less);
        assert_eq!(order(b"a.yaml", false, b"a", true), Ordering::Less);
        assert_eq!(order(b"a0", false, b"a", true), Ordering::Greater);
    }

    #[test]
    fn trees_written_here_equal_libgit2s() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let sub = repo.treebuilder(None).unwrap().write().unwrap();
        let names = ["a-b", "a", "a.yaml", "a0", "b", "A", "é", "z"];
        let mut builder = repo.treebuilder(None).unwrap();
        let mut trees = Trees::new(&repo).unwrap();
        let mut mine = None;
        let written = Cell::new(0);
        for (i, name) in names.iter().enumerate() {
            let (id, mode) = if i % 2 == 0 {
                (sub, DIR)
            } else {
                (blob, 0o100644)
            };
            builder.insert(name, id, mode).unwrap();
            mine = trees
                .upsert(mine, &[name], 0, Some((id, mode)), &written)
                .unwrap();
        }
        assert_eq!(mine, Some(builder.write().unwrap()));
        // Editing a tree read from the repository, and removing entries.
        let mut trees = Trees::new(&repo).unwrap();
        let edited = trees
            .upsert(mine, &["a"], 0, None, &written)
            .unwrap()
            .unwrap();
        builder.remove("a").unwrap();
        assert_eq!(edited, builder.write().unwrap());
    }
}
