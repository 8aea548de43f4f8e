//! Indexes over the Releases the reflector holds, so that no reconcile or mapper scans every
//! Release: Releases by Environment (the Environment's users, the Releases an Environment or
//! a Flux Kustomization change re-queues) and the claimants of one app folder.
//!
//! The index is fed the same watch events as the reflector (`Index::observe`), including the
//! relist after a watch restarts, which rebuilds it from scratch.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use kube::ResourceExt;
use kube::runtime::watcher;

use crate::api::{Environment, Phase, Release};

/// `(namespace, environment name)`.
pub type EnvKey = (String, String);

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

/// Which Environments a Flux Kustomization applies.
#[derive(Clone, Debug, Default)]
struct FluxRefs {
    /// `(namespace, name)` of a Kustomization → the Environments that list it.
    listed: HashMap<(String, String), Vec<EnvKey>>,
    /// Per-app mode: `(Kustomization namespace, environment name)` → Environment.
    per_app: HashMap<(String, String), EnvKey>,
}

#[derive(Debug, Default)]
struct Releases {
    by_env: HashMap<EnvKey, BTreeMap<String, Entry>>,
}

impl Releases {
    fn apply(&mut self, rel: &Release) {
        let key = (
            rel.namespace().unwrap_or_default(),
            rel.spec.environment.clone(),
        );
        self.by_env
            .entry(key)
            .or_default()
            .insert(rel.name_any(), Entry::of(rel));
    }

    fn delete(&mut self, rel: &Release) {
        let key = (
            rel.namespace().unwrap_or_default(),
            rel.spec.environment.clone(),
        );
        if let Some(names) = self.by_env.get_mut(&key) {
            names.remove(&rel.name_any());
            if names.is_empty() {
                self.by_env.remove(&key);
            }
        }
    }
}

/// The index. Cheap to read from many reconciles at once.
#[derive(Debug, Default)]
pub struct Index {
    releases: RwLock<Releases>,
    /// Built during a relist; replaces `releases` when the relist is done.
    relist: RwLock<Option<Releases>>,
    flux: RwLock<FluxRefs>,
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

    /// Names of the Releases in the Environment's namespace that name it, sorted.
    pub fn users(&self, ns: &str, env: &str) -> Vec<String> {
        read(&self.releases)
            .by_env
            .get(&(ns.to_string(), env.to_string()))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The live Releases that claim `app` in an Environment, in the order that decides who
    /// owns it: oldest first, then by uid (the same order everywhere, also for Releases
    /// created in the same second).
    pub fn claimants(&self, ns: &str, env: &str, app: &str) -> Vec<String> {
        let guard = read(&self.releases);
        let Some(m) = guard.by_env.get(&(ns.to_string(), env.to_string())) else {
            return vec![];
        };
        let mut claims: Vec<(&String, &Entry)> = m
            .iter()
            .filter(|(_, e)| e.app == app && !e.deleting)
            .collect();
        claims.sort_by(|a, b| (a.1.created, &a.1.uid, a.0).cmp(&(b.1.created, &b.1.uid, b.0)));
        claims.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// Releases of an Environment (of one app, if given) still waiting for Flux.
    pub fn waiting_for_flux(&self, env: &EnvKey, app: Option<&str>) -> Vec<String> {
        read(&self.releases)
            .by_env
            .get(env)
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| e.waiting_for_flux && app.is_none_or(|a| a == e.app))
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records which Flux Kustomizations apply an Environment (called on every Environment
    /// change the Release controller sees).
    pub fn environment(&self, env: &Environment) {
        let key: EnvKey = (env.namespace().unwrap_or_default(), env.name_any());
        let mut flux = write(&self.flux);
        for envs in flux.listed.values_mut() {
            envs.retain(|e| *e != key);
        }
        flux.listed.retain(|_, envs| !envs.is_empty());
        flux.per_app.retain(|_, e| *e != key);
        let Some(f) = env.spec.flux.as_ref() else {
            return;
        };
        for ks in &f.kustomizations {
            let ns = ks.namespace.clone().unwrap_or_else(|| key.0.clone());
            flux.listed
                .entry((ns, ks.name.clone()))
                .or_default()
                .push(key.clone());
        }
        if f.per_app {
            let ns = crate::render::per_app_namespace(env, None);
            flux.per_app.insert((ns, key.1.clone()), key.clone());
        }
    }

    /// The Releases a change of the Flux Kustomization `namespace/name` may settle:
    /// `(namespace, name)` of each Release waiting for Flux in an Environment it applies.
    pub fn applied_by(&self, namespace: &str, name: &str) -> Vec<(String, String)> {
        let flux = read(&self.flux).clone();
        let mut out = vec![];
        if let Some(envs) = flux.listed.get(&(namespace.to_string(), name.to_string())) {
            for env in envs {
                out.extend(
                    self.waiting_for_flux(env, None)
                        .into_iter()
                        .map(|n| (env.0.clone(), n)),
                );
            }
        }
        // Per-app Kustomizations are named `<environment>-<app>`.
        for ((ks_ns, env_name), env) in &flux.per_app {
            if ks_ns != namespace {
                continue;
            }
            if let Some(app) = name
                .strip_prefix(env_name.as_str())
                .and_then(|r| r.strip_prefix('-'))
            {
                out.extend(
                    self.waiting_for_flux(env, Some(app))
                        .into_iter()
                        .map(|n| (env.0.clone(), n)),
                );
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
mod tests {
    use super::*;
    use crate::api::ReleaseStatus;

    fn rel(ns: &str, name: &str, env: &str, app: &str, created: i64, uid: &str) -> Release {
        let mut r: Release = serde_json::from_value(serde_json::json!({
            "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": name, "namespace": ns, "uid": uid,
                "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string()},
            "spec": {"environment": env, "app": app, "version": "1"},
        }))
        .unwrap();
        r.status = Some(ReleaseStatus::default());
        r
    }

    fn env(ns: &str, name: &str, flux: serde_json::Value) -> Environment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"repository": {"url": "https://git.example/x.git", "path": "envs/x"}, "flux": flux},
        }))
        .unwrap()
    }

    #[test]
    fn claimants_are_ordered_by_age_then_uid_and_skip_deleting_ones() {
        let ix = Index::default();
        // Same second: the uid decides, not the name.
        ix.observe(&watcher::Event::Apply(rel(
            "a", "zz", "st", "api", 100, "u1",
        )));
        ix.observe(&watcher::Event::Apply(rel(
            "a", "aa", "st", "api", 100, "u2",
        )));
        ix.observe(&watcher::Event::Apply(rel(
            "a", "old", "st", "api", 50, "u9",
        )));
        ix.observe(&watcher::Event::Apply(rel(
            "a", "web", "st", "web", 10, "u3",
        )));
        ix.observe(&watcher::Event::Apply(rel("b", "x", "st", "api", 1, "u4")));
        assert_eq!(ix.claimants("a", "st", "api"), ["old", "zz", "aa"]);
        let mut gone = rel("a", "old", "st", "api", 50, "u9");
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::from_second(60).unwrap(),
            ));
        ix.observe(&watcher::Event::Apply(gone.clone()));
        assert_eq!(ix.claimants("a", "st", "api"), ["zz", "aa"]);
        assert_eq!(ix.users("a", "st"), ["aa", "old", "web", "zz"]);
        ix.observe(&watcher::Event::Delete(gone));
        assert_eq!(ix.users("a", "st"), ["aa", "web", "zz"]);
        assert!(ix.users("a", "prod").is_empty());
    }

    #[test]
    fn a_relist_replaces_the_index_when_it_is_done() {
        let ix = Index::default();
        ix.observe(&watcher::Event::Apply(rel(
            "a", "one", "st", "api", 1, "u1",
        )));
        ix.observe(&watcher::Event::Init);
        ix.observe(&watcher::Event::InitApply(rel(
            "a", "two", "st", "api", 1, "u2",
        )));
        assert_eq!(
            ix.users("a", "st"),
            ["one"],
            "answers from the old state until done"
        );
        ix.observe(&watcher::Event::InitDone);
        assert_eq!(ix.users("a", "st"), ["two"]);
    }

    #[test]
    fn kustomization_changes_map_to_the_waiting_releases_they_apply() {
        let ix = Index::default();
        let mut waiting = rel("team", "api", "staging", "api", 1, "u1");
        waiting.status = Some(ReleaseStatus {
            commit: Some("abc".into()),
            phase: Phase::Committed,
            ..Default::default()
        });
        let mut done = rel("team", "web", "staging", "web", 1, "u2");
        done.status = Some(ReleaseStatus {
            commit: Some("abc".into()),
            phase: Phase::Ready,
            ..Default::default()
        });
        ix.observe(&watcher::Event::Apply(waiting));
        ix.observe(&watcher::Event::Apply(done));
        ix.environment(&env(
            "team",
            "staging",
            serde_json::json!({"kustomizations": [{"name": "apps", "namespace": "flux-system"}]}),
        ));
        assert_eq!(
            ix.applied_by("flux-system", "apps"),
            [("team".to_string(), "api".to_string())]
        );
        assert!(ix.applied_by("flux-system", "other").is_empty());
        assert!(ix.applied_by("team", "apps").is_empty());
        // Per-app mode: `<environment>-<app>` in the first Kustomization's namespace.
        ix.environment(&env(
            "team",
            "staging",
            serde_json::json!({"perApp": true, "gitRepository": {"name": "repo"},
                "kustomizations": [{"name": "apps", "namespace": "flux-system"}]}),
        ));
        assert_eq!(
            ix.applied_by("flux-system", "staging-api"),
            [("team".to_string(), "api".to_string())]
        );
        assert!(ix.applied_by("flux-system", "staging-web").is_empty());
    }
}
