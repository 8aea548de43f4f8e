//! Indexes over the Releases the reflector holds, so that no reconcile or mapper scans every
//! Release: Releases by the Environment they attach to (from any namespace), the claimants of
//! one app folder, the Releases a Flux Kustomization change may settle; and the write
//! targets of Environments, to find overlapping ones.
//!
//! The index is fed the same watch events as the reflector (`Index::observe`), including the
//! relist after a watch restarts, which rebuilds it from scratch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::{Environment, Phase, Release};

/// `(namespace, name)` of an Environment.
pub type EnvKey = (String, String);
/// `(namespace, name)` of a Release.
pub type RelKey = (String, String);

/// What the index keeps of one Release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub app: String,
    /// Creation time, in seconds since the epoch (the API server's resolution).
    pub created: i64,
    /// Its uid, the tie-break of claimants created in the same second.
    pub uid: String,
    pub deleting: bool,
    /// It has a commit that Flux has not settled yet.
    pub waiting_for_flux: bool,
}

impl Entry {
    pub fn of(rel: &Release) -> Entry {
        Entry {
            app: rel.spec.app.clone(),
            created: rel
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(i64::MAX),
            uid: rel.metadata.uid.clone().unwrap_or_default(),
            deleting: rel.metadata.deletion_timestamp.is_some(),
            waiting_for_flux: rel.status.as_ref().is_some_and(|s| {
                s.commit.is_some() && matches!(s.phase, Phase::Committed | Phase::Applied)
            }),
        }
    }
}

/// Where an Environment writes, for the overlap check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL without credentials, scheme-insensitive, without a trailing `.git` or `/`.
    pub repo: String,
    pub branch: String,
    pub path: String,
    pub created: i64,
    pub uid: String,
}

impl Target {
    pub fn of(env: &Environment) -> Target {
        let url = crate::gitops::redact_url(&env.spec.repository.url).to_lowercase();
        let repo = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_string();
        Target {
            repo,
            branch: env.spec.repository.branch.clone(),
            path: env.spec.repository.path.trim_matches('/').to_string(),
            created: env
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(i64::MAX),
            uid: env.metadata.uid.clone().unwrap_or_default(),
        }
    }

    /// The same repository and branch, and one folder equal to or inside the other.
    pub fn overlaps(&self, other: &Target) -> bool {
        let nested = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        self.repo == other.repo
            && self.branch == other.branch
            && (nested(&self.path, &other.path) || nested(&other.path, &self.path))
    }

    fn older_than(&self, other: &Target) -> bool {
        (self.created, &self.uid) < (other.created, &other.uid)
    }
}

/// Which Environments a Flux Kustomization applies, and where each Environment writes.
#[derive(Clone, Debug, Default)]
struct Environments {
    /// `(namespace, name)` of a Kustomization → the Environments that list it.
    listed: HashMap<(String, String), Vec<EnvKey>>,
    /// Per-app mode: environment name → the Environments of that name in per-app mode.
    per_app: HashMap<String, Vec<EnvKey>>,
    targets: HashMap<EnvKey, Target>,
}

#[derive(Debug, Default)]
struct Releases {
    by_env: HashMap<EnvKey, BTreeMap<RelKey, Entry>>,
    /// Promotion: upstream → the Releases that follow it (`spec.follow`).
    followers: HashMap<RelKey, BTreeSet<RelKey>>,
    /// Follower → the upstream it follows, to undo the entry above.
    follows: HashMap<RelKey, RelKey>,
}

impl Releases {
    fn apply(&mut self, rel: &Release) {
        self.by_env
            .entry(rel.environment_key())
            .or_default()
            .insert(rel_key(rel), Entry::of(rel));
        self.unfollow(&rel_key(rel));
        if let Some(follow) = &rel.spec.follow {
            let me = rel_key(rel);
            let upstream = follow.upstream_key(&me.0);
            self.followers
                .entry(upstream.clone())
                .or_default()
                .insert(me.clone());
            self.follows.insert(me, upstream);
        }
    }

    fn delete(&mut self, rel: &Release) {
        let env = rel.environment_key();
        if let Some(names) = self.by_env.get_mut(&env) {
            names.remove(&rel_key(rel));
            if names.is_empty() {
                self.by_env.remove(&env);
            }
        }
        self.unfollow(&rel_key(rel));
    }

    fn unfollow(&mut self, follower: &RelKey) {
        if let Some(upstream) = self.follows.remove(follower)
            && let Some(set) = self.followers.get_mut(&upstream)
        {
            set.remove(follower);
            if set.is_empty() {
                self.followers.remove(&upstream);
            }
        }
    }
}

fn rel_key(rel: &Release) -> RelKey {
    (rel.namespace().unwrap_or_default(), rel.name_any())
}

/// The index. Cheap to read from many reconciles at once.
#[derive(Debug, Default)]
pub struct Index {
    releases: RwLock<Releases>,
    /// Built during a relist; replaces `releases` when the relist is done.
    relist: RwLock<Option<Releases>>,
    environments: RwLock<Environments>,
}

impl Index {
    /// Feeds one watch event of Releases.
    pub fn observe(&self, event: &watcher::Event<Release>) {
        match event {
            watcher::Event::Apply(rel) => write(&self.releases).apply(rel),
            watcher::Event::Delete(rel) => write(&self.releases).delete(rel),
            watcher::Event::Init => *write(&self.relist) = Some(Releases::default()),
            watcher::Event::InitApply(rel) => {
                if let Some(r) = write(&self.relist).as_mut() {
                    r.apply(rel);
                }
            }
            watcher::Event::InitDone => {
                if let Some(r) = write(&self.relist).take() {
                    *write(&self.releases) = r;
                }
            }
        }
    }

    /// The Releases attached to an Environment, from every namespace, sorted.
    pub fn users(&self, env: &EnvKey) -> Vec<RelKey> {
        read(&self.releases)
            .by_env
            .get(env)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The Releases that follow `upstream` (`spec.follow`), from every namespace, sorted: a
    /// change of the upstream re-queues them.
    pub fn followers(&self, upstream: &RelKey) -> Vec<RelKey> {
        read(&self.releases)
            .followers
            .get(upstream)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The live Releases that claim `app` in an Environment, as `namespace/name`, in the
    /// order that decides who owns it: oldest first, then by uid (the same order everywhere,
    /// also for Releases created in the same second).
    pub fn claimants(&self, env: &EnvKey, app: &str) -> Vec<String> {
        let guard = read(&self.releases);
        let Some(m) = guard.by_env.get(env) else {
            return vec![];
        };
        let mut claims: Vec<(&RelKey, &Entry)> = m
            .iter()
            .filter(|(_, e)| e.app == app && !e.deleting)
            .collect();
        claims.sort_by(|a, b| (a.1.created, &a.1.uid, a.0).cmp(&(b.1.created, &b.1.uid, b.0)));
        claims
            .into_iter()
            .map(|((ns, name), _)| format!("{ns}/{name}"))
            .collect()
    }

    /// Releases of an Environment (of one app, if given) still waiting for Flux.
    fn waiting_for_flux(&self, env: &EnvKey, app: Option<&str>) -> Vec<RelKey> {
        read(&self.releases)
            .by_env
            .get(env)
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| e.waiting_for_flux && app.is_none_or(|a| a == e.app))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records an Environment: the Flux Kustomizations that apply it and where it writes
    /// (called on every Environment change the Release controller sees).
    pub fn environment(&self, env: &Environment) {
        let key: EnvKey = (env.namespace().unwrap_or_default(), env.name_any());
        let mut envs = write(&self.environments);
        let Environments {
            listed, per_app, ..
        } = &mut *envs;
        for keys in listed.values_mut().chain(per_app.values_mut()) {
            keys.retain(|e| *e != key);
        }
        envs.listed.retain(|_, keys| !keys.is_empty());
        envs.per_app.retain(|_, keys| !keys.is_empty());
        if env.metadata.deletion_timestamp.is_some() {
            envs.targets.remove(&key);
            return;
        }
        envs.targets.insert(key.clone(), Target::of(env));
        let Some(f) = env.spec.flux.as_ref() else {
            return;
        };
        for ks in &f.kustomizations {
            let ns = ks.namespace.clone().unwrap_or_else(|| key.0.clone());
            envs.listed
                .entry((ns, ks.name.clone()))
                .or_default()
                .push(key.clone());
        }
        if f.per_app {
            envs.per_app
                .entry(key.1.clone())
                .or_default()
                .push(key.clone());
        }
    }

    /// An older Environment whose write target overlaps this one's, if any.
    pub fn overlapping(&self, env: &Environment) -> Option<EnvKey> {
        let key: EnvKey = (env.namespace().unwrap_or_default(), env.name_any());
        let mine = Target::of(env);
        let envs = read(&self.environments);
        let mut older: Vec<(&EnvKey, &Target)> = envs
            .targets
            .iter()
            .filter(|(k, t)| **k != key && t.overlaps(&mine) && t.older_than(&mine))
            .collect();
        older.sort_by(|a, b| (a.1.created, &a.1.uid).cmp(&(b.1.created, &b.1.uid)));
        older.first().map(|(k, _)| (*k).clone())
    }

    /// The Releases a change of the Flux Kustomization `namespace/name` may settle: those
    /// waiting for Flux in an Environment it applies (or, for a per-app Kustomization
    /// `<environment>-<app>`, that app's).
    pub fn applied_by(&self, namespace: &str, name: &str) -> Vec<RelKey> {
        // Readers only: holding this guard while reading the Releases cannot deadlock (no
        // writer takes both locks).
        let envs = read(&self.environments);
        let mut out = vec![];
        if let Some(keys) = envs.listed.get(&(namespace.to_string(), name.to_string())) {
            for env in keys {
                out.extend(self.waiting_for_flux(env, None));
            }
        }
        for (env_name, keys) in &envs.per_app {
            let Some(app) = name
                .strip_prefix(env_name.as_str())
                .and_then(|r| r.strip_prefix('-'))
            else {
                continue;
            };
            for env in keys {
                out.extend(self.waiting_for_flux(env, Some(app)));
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
