//! The shared context every reconcile receives.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::api::Api;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::api::{Environment, Release};
use crate::gitops::{Credentials, Writer};

use super::index::Index;
use super::metrics::Metrics;
use super::status::key;

/// Settings of a controller process.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the cached clones live.
    pub cache_dir: PathBuf,
    /// Watch only these namespaces (all when empty); see `scope`.
    pub namespaces: Vec<String>,
    /// Watch only Releases and Environments with these labels (a label selector).
    pub label_selector: Option<String>,
    /// Reconciles run at once per controller.
    pub concurrency: u16,
    /// How long a git server may stay silent before an operation fails.
    pub git_timeout: Duration,
    /// Name under which Events are reported.
    pub reporter: String,
    /// Ask Flux to reconcile right after a push.
    pub nudge_flux: bool,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Run only while holding this Lease.
    pub leader_election: Option<LeaderElection>,
}

/// Where the leader Lease lives and who this process is.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    /// Seconds a lease stays valid without renewal; a new leader takes over after it.
    pub lease_seconds: u64,
}

/// What every reconcile receives.
pub struct Context {
    pub client: Client,
    /// The git writer: one worker per repository.
    pub writer: Writer,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// All Releases, as the Release controller's reflector sees them.
    pub releases: Store<Release>,
    /// The Environments the Release controller watches (to re-queue their Releases).
    pub environments: Store<Environment>,
    /// Releases by Environment and app, fed the reflector's events.
    pub index: Arc<Index>,
    /// Cluster-scoped kinds, from API discovery.
    pub scopes: super::discovery::ScopeCache,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// The budget of Normal Events (Warnings always go out).
    pub events: super::throttle::EventBudget,
    /// Flux nudges, coalesced per Flux object.
    pub nudges: Arc<super::throttle::Coalescer>,
    /// Consecutive failures per object, for exponential backoff; an entry goes on success
    /// and when the object is deleted.
    pub(super) failures: Mutex<HashMap<String, u32>>,
    /// When each Environment's repository was last probed, at which generation.
    pub(super) probes: Mutex<HashMap<String, (std::time::Instant, Option<i64>)>>,
    /// The last credentials read per Environment (by uid), so that Releases can still
    /// remove their folders after a namespace deletion removed the Secret first. In memory
    /// only; dropped when the Environment goes.
    pub(super) credentials: Mutex<HashMap<String, Credentials>>,
    /// Delivers Release transitions to the Environments' receivers, off the reconcile path.
    pub notifier: Arc<super::notify::Notifier>,
    /// Clients of the workload clusters of Environments with `spec.cluster`.
    pub clusters: super::remote::Clusters,
}

impl Context {
    /// The delay before retrying an object that failed `n` times in a row: 2s doubling to 5m.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs((2u64 << (*n - 1).min(8)).min(300))
    }

    /// Whether an Environment was probed successfully within a minute at this generation;
    /// Release changes re-queue Environments often, and a probe is a network round trip.
    pub fn recently_probed(&self, key: &str, generation: Option<i64>) -> bool {
        let probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        probes
            .get(key)
            .is_some_and(|(t, g)| *g == generation && t.elapsed() < Duration::from_secs(60))
    }

    pub fn probed(&self, key: &str, generation: Option<i64>) {
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (std::time::Instant::now(), generation));
    }

    /// Forgets the failures of an object after a success.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Forgets everything kept about an object that is going away.
    pub fn forget(&self, key: &str) {
        self.succeeded(key);
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    pub fn remember_credentials(&self, env: &Environment, creds: &Credentials) {
        let uid = env.metadata.uid.clone().unwrap_or_else(|| key(env));
        self.credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, creds.clone());
    }

    pub fn remembered_credentials(&self, env: &Environment) -> Option<Credentials> {
        let uid = env.metadata.uid.clone().unwrap_or_else(|| key(env));
        self.credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
            .cloned()
    }

    pub fn forget_credentials(&self, env: &Environment) {
        let uid = env.metadata.uid.clone().unwrap_or_else(|| key(env));
        self.credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
    }

    /// The cluster an Environment's Flux and workloads live in; `fresh`: read its kubeconfig
    /// Secret now rather than trust a client checked less than 30 s ago (see
    /// `remote::Clusters::of`).
    pub async fn workloads(
        &self,
        env: &Environment,
        fresh: bool,
    ) -> Result<super::remote::Workloads, super::Error> {
        Ok(self.clusters.of(&self.client, env, fresh).await?)
    }

    pub fn releases_api(&self, ns: &str) -> Api<Release> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn environments_api(&self, ns: &str) -> Api<Environment> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// An Environment from the watch cache, or from the API server when the cache does not
    /// hold it (not yet synced, or outside this shard's label selector): a burst of Releases
    /// against one Environment costs no GET each.
    pub async fn environment(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<Environment>, kube::Error> {
        let key = kube::runtime::reflector::ObjectRef::new(name).within(ns);
        if let Some(env) = self.environments.get(&key) {
            return Ok(Some((*env).clone()));
        }
        self.environments_api(ns).get_opt(name).await
    }
}

/// How long to wait before looking again at an object that is fine.
pub const RESYNC: Duration = Duration::from_secs(600);

/// The Lease of one controller (one shard): `explicit` when given; otherwise
/// `tumbler-leader` without a label selector, or with one a name derived from it, stable and
/// valid (`tumbler-leader-<selector as a DNS label>-<hash>`, at most 63 characters), so that
/// the replicas of one shard share a Lease and two shards never fight over one.
pub fn lease_name(explicit: Option<&str>, selector: Option<&str>) -> String {
    const BASE: &str = "tumbler-leader";
    if let Some(name) = explicit.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_string();
    }
    let Some(selector) = selector.map(str::trim).filter(|s| !s.is_empty()) else {
        return BASE.to_string();
    };
    let mut slug = String::new();
    for c in selector.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    // Room for `tumbler-leader-`, `-` and 8 hex digits within 63 characters.
    slug.truncate(63 - BASE.len() - 2 - 8);
    let slug = slug.trim_end_matches('-');
    // FNV-1a: stable across builds and platforms (the slug alone would equate `a=b` and
    // `!a,b`, and truncation would equate long selectors).
    let hash = selector.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    if slug.is_empty() {
        format!("{BASE}-{hash:08x}")
    } else {
        format!("{BASE}-{slug}-{hash:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::lease_name;

    #[test]
    fn each_shard_has_its_own_stable_valid_lease() {
        assert_eq!(lease_name(None, None), "tumbler-leader");
        assert_eq!(lease_name(None, Some(" ")), "tumbler-leader");
        assert_eq!(lease_name(Some("mine"), Some("a=b")), "mine");
        let shard1 = lease_name(None, Some("sharding.fluxcd.io/key=shard1"));
        let shard2 = lease_name(None, Some("sharding.fluxcd.io/key=shard2"));
        let main = lease_name(None, Some("!sharding.fluxcd.io/key"));
        let has = lease_name(None, Some("sharding.fluxcd.io/key"));
        assert!(
            shard1.starts_with("tumbler-leader-sharding-fluxcd-io-key-shard1-"),
            "{shard1}"
        );
        assert_eq!(
            shard1,
            lease_name(None, Some("sharding.fluxcd.io/key=shard1"))
        );
        let all = [&shard1, &shard2, &main, &has];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let long =
            "tumbler.dev/e2e-scenario=e2e-sharding-abcde,sharding.fluxcd.io/key=shard-number-one";
        for name in all.into_iter().chain([&lease_name(None, Some(long))]) {
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-') && !name.contains("--"), "{name}");
        }
    }
}
