//! The shared context every reconcile receives, and `run`, which starts both controllers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::api::{Environment, Release};
use crate::gitops::{Credentials, Writer, WriterOptions};

use super::admin::{self, Admin};
use super::index::Index;
use super::metrics::Metrics;
use super::status::key;
use super::{Error, environment, release};

/// Settings of a controller process.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the cached clones live.
    pub cache_dir: PathBuf,
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Reconciles run at once per controller.
    pub concurrency: u16,
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
    /// Releases by Environment and app, fed the reflector's events.
    pub index: Arc<Index>,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for exponential backoff; an entry goes on success
    /// and when the object is deleted.
    failures: Mutex<HashMap<String, u32>>,
    /// When each Environment's repository was last probed, at which generation.
    probes: Mutex<HashMap<String, (std::time::Instant, Option<i64>)>>,
    /// The last credentials read per Environment (by uid), so that Releases can still
    /// remove their folders after a namespace deletion removed the Secret first. In memory
    /// only; dropped when the Environment goes.
    credentials: Mutex<HashMap<String, Credentials>>,
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
}

fn api_for<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the Environment and Release controllers until SIGTERM or Ctrl-C (or, under leader
/// election, until the lease is lost: the process then exits so that it restarts as a
/// follower, and nothing it started keeps writing).
pub async fn run(client: Client, config: Config) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let tx = tx.clone();
        async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut term) => {
                        term.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term => {},
            }
            tracing::info!("shutting down");
            let _ = tx.send(true);
        }
    });

    let metrics = Metrics::default();
    let writer = Writer::new(config.cache_dir.clone(), WriterOptions::default());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: config.reporter.clone(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );

    let releases: Api<Release> = api_for(&client, &config.namespace);
    let environments: Api<Environment> = api_for(&client, &config.namespace);

    // The reflector keeps every Release in memory: drop what Tumbler never reads
    // (managedFields, the last-applied annotation) so 10,000 Releases stay small. The index
    // sees every event before the reflector and the controller do.
    let index = Arc::new(Index::default());
    let (store, store_writer) = kube::runtime::reflector::store();
    let release_stream = kube::runtime::reflector(
        store_writer,
        watcher::watcher(releases, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|rel: &mut Release| {
                rel.managed_fields_mut().clear();
                rel.annotations_mut()
                    .remove("kubectl.kubernetes.io/last-applied-configuration");
            })
            .inspect({
                let index = index.clone();
                move |event| {
                    if let Ok(event) = event {
                        index.observe(event);
                    }
                }
            }),
    )
    .applied_objects();
    let release_controller = Controller::for_stream(release_stream, store.clone());

    // A change to an Environment re-queues the Releases that name it.
    let by_env = index.clone();
    let release_controller = release_controller.watches(
        environments.clone(),
        watcher::Config::default().any_semantic(),
        move |env: Environment| {
            by_env.environment(&env);
            let ns = env.namespace().unwrap_or_default();
            by_env
                .users(&ns, &env.name_any())
                .into_iter()
                .map(move |name| ObjectRef::<Release>::new(&name).within(&ns))
                .collect::<Vec<_>>()
        },
    );
    // A Flux Kustomization re-queues only the Releases waiting for it.
    let release_controller = with_flux_watch(release_controller, &client, index.clone());

    let metrics = Arc::new(metrics.with_state(store.clone(), writer.clone()));
    let admin = Arc::new(Admin {
        metrics: metrics.clone(),
        ready: false.into(),
    });
    if let Some(addr) = config.admin_addr {
        let admin = admin.clone();
        tokio::spawn(async move {
            if let Err(e) = admin::serve(addr, admin).await {
                tracing::error!(error = %e, %addr, "admin server failed");
            }
        });
    }
    let ctx = Arc::new(Context {
        client: client.clone(),
        writer,
        recorder,
        releases: store.clone(),
        index,
        config: config.clone(),
        metrics,
        failures: Mutex::default(),
        probes: Mutex::default(),
        credentials: Mutex::default(),
    });

    if let Some(le) = &config.leader_election {
        // A follower is healthy and ready: it is doing its job, which is to wait.
        admin
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        match lead(&client, le, rx.clone()).await? {
            Some(mut leader) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = leader.wait_for(|is| !*is).await;
                    tracing::error!("lost the leader lease; stopping");
                    let _ = tx.send(true);
                });
            }
            None => return Ok(()),
        }
    }
    admin
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let concurrency = config.concurrency.max(1);
    let releases_done = release_controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(stop(rx.clone()))
        .run(release::reconcile, release::error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(err) = res {
                tracing::debug!(error = %err, "release reconcile");
            }
        });

    // Releases re-queue their Environment so its release count stays right. The Environment
    // controller starts once the Release cache has synced: before that it would see no
    // users and could let an Environment with Releases go.
    let synced = store.clone();
    let release_api = api_for::<Release>(&client, &config.namespace);
    let ctx_env = ctx.clone();
    let environments_done = async move {
        if synced.wait_until_ready().await.is_err() {
            return;
        }
        Controller::new(environments, watcher::Config::default().any_semantic())
            .watches(
                release_api,
                watcher::Config::default().any_semantic(),
                move |rel: Release| {
                    Some(
                        ObjectRef::<Environment>::new(&rel.spec.environment)
                            .within(&rel.namespace().unwrap_or_default()),
                    )
                },
            )
            .with_config(
                // Release changes re-queue their Environment (the release count): coalesce them.
                kube::runtime::controller::Config::default()
                    .concurrency(concurrency)
                    .debounce(std::time::Duration::from_secs(2)),
            )
            .graceful_shutdown_on(stop(rx))
            .run(environment::reconcile, environment::error_policy, ctx_env)
            .for_each(|res| async move {
                if let Err(err) = res {
                    tracing::debug!(error = %err, "environment reconcile");
                }
            })
            .await
    };

    tracing::info!(namespace = ?config.namespace, cache = %config.cache_dir.display(), "controllers started");
    futures::join!(releases_done, environments_done);
    Ok(())
}

/// Waits until this process holds the Lease (or shutdown is asked for: `None`). Returns the
/// channel that turns false when the lease is lost.
async fn lead(
    client: &Client,
    le: &LeaderElection,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::sync::watch::Receiver<bool>>, Error> {
    use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
    let grace = (le.lease_seconds / 3).max(1);
    let manager = LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.namespace)
        .with_identity(&le.identity)
        .with_duration(le.lease_seconds)
        .with_grace(grace)
        .with_field_manager(super::MANAGER)
        .with_create_mode(LeaseCreateMode::AutoCreate)
        .build()
        .await
        .map_err(|e| Error::LeaderElection(e.to_string()))?;
    let (mut leader, task) = manager.watch().await;
    // The task lives as long as the receiver; keep it detached.
    drop(task);
    tracing::info!(lease = %le.lease_name, namespace = %le.namespace, identity = %le.identity, "waiting for the leader lease");
    tokio::select! {
        res = leader.wait_for(|is| *is) => {
            if res.is_err() {
                return Err(Error::LeaderElection("the lease task ended".into()));
            }
        }
        _ = shutdown.wait_for(|v| *v) => return Ok(None),
    }
    tracing::info!(identity = %le.identity, "acquired the leader lease");
    Ok(Some(leader))
}

/// Adds a watch on Flux Kustomizations when their CRD is installed; without Flux, Releases
/// are still committed and report that no Flux object applies them.
fn with_flux_watch(
    controller: Controller<Release>,
    client: &Client,
    index: Arc<Index>,
) -> Controller<Release> {
    let resource = crate::flux::kustomization_resource();
    // Kustomizations usually live in flux-system, outside the watched namespace.
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    // A Kustomization change re-queues the Releases of the Environments it applies that
    // still wait for Flux; those already settled are looked at again on resync.
    controller.watches_with(
        api,
        resource,
        watcher::Config::default().any_semantic(),
        move |ks: DynamicObject| {
            index
                .applied_by(&ks.namespace().unwrap_or_default(), &ks.name_any())
                .into_iter()
                .map(|(ns, name)| ObjectRef::<Release>::new(&name).within(&ns))
                .collect::<Vec<_>>()
        },
    )
}

/// How long to wait before looking again at an object that is fine.
pub const RESYNC: Duration = Duration::from_secs(600);
