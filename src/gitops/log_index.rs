//! The log index: for every commit of a first-parent chain, who committed it and, for
//! Tumbler's commits, the `App` and `Path` trailers — what the release log filters on — kept
//! in a file next to the clone (`<git dir>/tumbler-log.index`). A log then filters the index
//! and reads only the commits it lists, instead of every commit back to the one it needs.
//!
//! The index holds one chain, oldest first, starting at a commit without a (present) first
//! parent; entry `i + 1`'s first parent is entry `i`. Commit ids name their parents, so the
//! chain below any of its commits never changes: a new head is indexed by walking back from
//! it to the first commit the index knows, keeping the index up to that commit and adding the
//! new ones. That covers new commits (the old head is found at once) and a rewritten branch
//! (the walk stops where the two histories meet, or indexes everything again).
//! A file that is unreadable, from another format or fails its checksum is ignored and
//! rebuilt; one that cannot be written (a read-only clone) only costs the next reader time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use sha2::{Digest, Sha256};

use super::history::parse_message;

const FILE: &str = "tumbler-log.index";
const MAGIC: &[u8; 8] = b"TUMBLOG1";
/// `app` of a commit Tumbler did not make (no trailers).
const NONE: u32 = u32::MAX;

/// One commit of the chain; the numbers are indices into [`Index::strings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    oid: Oid,
    committer_name: u32,
    committer_email: u32,
    /// [`NONE`] for commits without Tumbler's trailers.
    app: u32,
    path: u32,
}

/// A first-parent chain, oldest first, with its strings interned.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Index {
    entries: Vec<Entry>,
    strings: Vec<Vec<u8>>,
    lookup: HashMap<Vec<u8>, u32>,
}

/// What the log filters on; `None`: no filter.
pub(super) struct Filter<'a> {
    pub env_path: Option<&'a str>,
    pub app: Option<&'a str>,
    pub committer: Option<(&'a [u8], &'a [u8])>,
}

impl Index {
    fn intern(&mut self, s: &[u8]) -> u32 {
        if let Some(&i) = self.lookup.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.to_vec());
        self.lookup.insert(s.to_vec(), i);
        i
    }

    fn find(&self, s: &[u8]) -> Option<u32> {
        self.lookup.get(s).copied()
    }

    fn entry_of(&mut self, commit: &git2::Commit<'_>) -> Entry {
        let c = commit.committer();
        let committer_name = self.intern(c.name_bytes());
        let committer_email = self.intern(c.email_bytes());
        let (mut app, mut path) = (NONE, NONE);
        if let Some((trailers, _)) = commit.message().ok().and_then(parse_message) {
            let get = |k: &str| {
                trailers
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or_default()
            };
            let (a, p) = (get("App").to_string(), get("Path").to_string());
            app = self.intern(a.as_bytes());
            path = self.intern(p.as_bytes());
        }
        Entry {
            oid: commit.id(),
            committer_name,
            committer_email,
            app,
            path,
        }
    }

    /// Makes the index the chain of `head`. `Ok(true)` when commits were added (the file is
    /// worth writing again).
    fn extend_to(&mut self, repo: &Repository, head: Oid) -> Result<bool, git2::Error> {
        if self.entries.last().is_some_and(|e| e.oid == head) {
            return Ok(false);
        }
        let known: HashMap<Oid, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.oid, i))
            .collect();
        let odb = repo.odb()?;
        let mut new = vec![];
        let mut next = Some(head);
        let mut meet = None;
        while let Some(oid) = next {
            if let Some(&i) = known.get(&oid) {
                meet = Some(i);
                break;
            }
            let commit = repo.find_commit(oid)?;
            new.push(self.entry_of(&commit));
            // A parent the clone does not have (shallow) ends the chain, as it ends git's.
            next = commit.parent_ids().next().filter(|p| odb.exists(*p));
        }
        match meet {
            Some(i) => self.entries.truncate(i + 1),
            None => self.entries.clear(),
        }
        let added = !new.is_empty();
        self.entries.extend(new.into_iter().rev());
        Ok(added)
    }

    /// Up to `limit` commits of the chain from `head` back, newest first, that pass `filter`.
    /// `head` must be in the index.
    fn select(&self, head: Oid, filter: &Filter<'_>, limit: usize) -> Vec<Oid> {
        let Some(end) = self.entries.iter().rposition(|e| e.oid == head) else {
            return vec![];
        };
        // A filter value the index has never seen matches nothing.
        let want = |s: Option<&[u8]>| s.map(|s| self.find(s).unwrap_or(NONE - 1));
        let app = want(filter.app.map(str::as_bytes));
        let path = want(filter.env_path.map(str::as_bytes));
        let who = filter
            .committer
            .map(|(n, e)| (want(Some(n)).unwrap(), want(Some(e)).unwrap()));
        self.entries[..=end]
            .iter()
            .rev()
            .filter(|e| e.app != NONE)
            .filter(|e| who.is_none_or(|(n, m)| e.committer_name == n && e.committer_email == m))
            .filter(|e| app.is_none_or(|a| e.app == a))
            .filter(|e| path.is_none_or(|p| e.path == p))
            .take(limit)
            .map(|e| e.oid)
            .collect()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 36);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        for s in &self.strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(e.oid.as_bytes());
            for n in [e.committer_name, e.committer_email, e.app, e.path] {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// The index in `bytes`; `None` when they are not a whole, consistent index.
    fn decode(bytes: &[u8]) -> Option<Index> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if Sha256::digest(body).as_slice() != sum {
            return None;
        }
        let mut r = Reader(body.strip_prefix(MAGIC)?);
        let mut index = Index::default();
        for _ in 0..r.u32()? {
            let len = r.u32()? as usize;
            let s = r.take(len)?;
            if index.intern(s) as usize != index.strings.len() - 1 {
                return None;
            }
        }
        let strings = index.strings.len() as u32;
        let count = r.u32()? as usize;
        index.entries.reserve(count.min(r.0.len() / 36));
        for _ in 0..count {
            let oid = Oid::from_bytes(r.take(20)?).ok()?;
            let [committer_name, committer_email, app, path] =
                [r.u32()?, r.u32()?, r.u32()?, r.u32()?];
            let ok = |n: u32| n < strings;
            let tumbler = app == NONE && path == NONE || ok(app) && ok(path);
            if !ok(committer_name) || !ok(committer_email) || !tumbler {
                return None;
            }
            index.entries.push(Entry {
                oid,
                committer_name,
                committer_email,
                app,
                path,
            });
        }
        r.0.is_empty().then_some(index)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

fn file(repo: &Repository) -> PathBuf {
    repo.path().join(FILE)
}

/// The index file of `repo`, if it is whole and still describes this repository: its first
/// commit has no first parent here (a shallow clone deepened since would otherwise keep the
/// short history).
fn load(repo: &Repository, path: &Path) -> Option<Index> {
    let index = Index::decode(&std::fs::read(path).ok()?)?;
    let first = repo.find_commit(index.entries.first()?.oid).ok()?;
    let parent = first.parent_ids().next();
    if parent.is_some_and(|p| repo.odb().is_ok_and(|odb| odb.exists(p))) {
        return None;
    }
    Some(index)
}

/// Writes the file whole or not at all (a temporary file renamed over it).
fn store(path: &Path, index: &Index) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    if std::fs::write(&tmp, index.encode()).is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The commits of the release log from `head` back, newest first, that pass `filter`, at
/// most `limit`: read from the index next to the clone, which is brought up to `head` (and
/// written back) first.
pub(super) fn select(
    repo: &Repository,
    head: Oid,
    filter: &Filter<'_>,
    limit: usize,
) -> Result<Vec<Oid>, git2::Error> {
    let path = file(repo);
    let mut index = load(repo, &path).unwrap_or_default();
    if index.extend_to(repo, head)? {
        store(&path, &index);
    }
    Ok(index.select(head, filter, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Signature;

    fn commit(repo: &Repository, parent: Option<Oid>, who: &str, app: Option<&str>) -> Oid {
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let sig = Signature::now(who, &format!("{who}@example.com")).unwrap();
        let message = match app {
            Some(app) => format!(
                "release {app}\n\nTumbler-Release: team/{app}\nTumbler-App: {app}\nTumbler-Path: envs/a\n"
            ),
            None => "by hand\n".to_string(),
        };
        let parents: Vec<_> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<_> = parents.iter().collect();
        repo.commit(None, &sig, &sig, &message, &tree, &parents)
            .unwrap()
    }

    fn chain(repo: &Repository, from: Option<Oid>, apps: &[&str]) -> Vec<Oid> {
        let mut out = vec![];
        let mut parent = from;
        for app in apps {
            let id = commit(repo, parent, "bot", Some(app));
            out.push(id);
            parent = Some(id);
        }
        out
    }

    fn all(repo: &Repository, head: Oid, app: Option<&str>) -> Vec<Oid> {
        let filter = Filter {
            env_path: Some("envs/a"),
            app,
            committer: Some((b"bot", b"bot@example.com")),
        };
        select(repo, head, &filter, usize::MAX).unwrap()
    }

    fn rev(mut v: Vec<Oid>) -> Vec<Oid> {
        v.reverse();
        v
    }

    #[test]
    fn the_index_follows_new_commits_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let first = chain(&repo, None, &["a", "b", "a"]);
        assert_eq!(all(&repo, first[2], None), rev(first.clone()));
        assert!(file(&repo).exists());
        // New commits: the index grows from where it was.
        let more = chain(&repo, Some(first[2]), &["b", "a"]);
        let mut expected: Vec<Oid> = first.iter().chain(&more).copied().collect();
        assert_eq!(all(&repo, more[1], None), rev(expected.clone()));
        assert_eq!(
            all(&repo, more[1], Some("a")),
            [more[1], first[2], first[0]]
        );
        assert_eq!(load(&repo, &file(&repo)).unwrap().entries.len(), 5);
        // An older head reads the same index, up to that commit.
        assert_eq!(all(&repo, first[1], None), [first[1], first[0]]);
        // A force-push: the branch goes back to first[1] and takes another way.
        let other = chain(&repo, Some(first[1]), &["c"]);
        expected = vec![first[0], first[1], other[0]];
        assert_eq!(all(&repo, other[0], None), rev(expected.clone()));
        assert_eq!(all(&repo, other[0], Some("a")), [first[0]]);
        let index = load(&repo, &file(&repo)).unwrap();
        assert_eq!(
            index.entries.iter().map(|e| e.oid).collect::<Vec<_>>(),
            expected
        );
        // A whole new history: nothing in common.
        let unrelated = chain(&repo, None, &["d", "d"]);
        assert_eq!(all(&repo, unrelated[1], Some("d")), rev(unrelated.clone()));
        assert_eq!(all(&repo, unrelated[1], Some("a")), []);
    }

    #[test]
    fn the_index_filters_like_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let ours = chain(&repo, None, &["a"]);
        let forged = commit(&repo, Some(ours[0]), "outsider", Some("a"));
        let manual = commit(&repo, Some(forged), "bot", None);
        let last = chain(&repo, Some(manual), &["a", "a", "a"]);
        assert_eq!(
            all(&repo, last[2], Some("a")),
            [last[2], last[1], last[0], ours[0]]
        );
        let anyone = Filter {
            env_path: None,
            app: Some("a"),
            committer: None,
        };
        let some = select(&repo, last[2], &anyone, 5).unwrap();
        assert_eq!(some, [last[2], last[1], last[0], forged, ours[0]]);
        assert_eq!(
            select(&repo, last[2], &anyone, 2).unwrap(),
            [last[2], last[1]]
        );
        let elsewhere = Filter {
            env_path: Some("envs/b"),
            app: None,
            committer: None,
        };
        assert_eq!(select(&repo, last[2], &elsewhere, 5).unwrap(), []);
    }

    #[test]
    fn a_corrupt_index_is_ignored_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let ids = chain(&repo, None, &["a", "b", "a"]);
        assert_eq!(all(&repo, ids[2], Some("a")), [ids[2], ids[0]]);
        let path = file(&repo);
        let good = std::fs::read(&path).unwrap();
        // A flipped byte, a truncated file, garbage, an empty file.
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        for bad in [
            flipped,
            good[..good.len() - 1].to_vec(),
            b"junk".to_vec(),
            vec![],
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(load(&repo, &path).is_none());
            assert_eq!(all(&repo, ids[2], Some("a")), [ids[2], ids[0]]);
            assert_eq!(std::fs::read(&path).unwrap(), good);
        }
        let decoded = Index::decode(&good).unwrap();
        assert_eq!(Index::decode(&decoded.encode()), Some(decoded));
    }
}
