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
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
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
