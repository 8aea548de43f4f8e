//! `run`: starts the admin server, waits for the leader lease, and runs the Release and
//! Environment controllers until shutdown.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use crate::api::{Environment, Release};
use crate::gitops::{Writer, WriterOptions};

use super::admin::{self, Admin};
use super::context::{Config, Context, LeaderElection};
use super::index::Index;
use super::metrics::Metrics;
use super::scope::OnlyWatched;
use super::{Error, environment, release};

/// Where the Release reflector sends the Environments whose Releases changed.
type EnvTrigger = futures::channel::mpsc::UnboundedSender<ObjectRef<Environment>>;

fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
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
    let (tx, rx) = watch::channel(false);
    tokio::spawn(on_signal(tx.clone()));
    tokio::spawn(trim_heap());
    let writer = Writer::new(config.cache_dir.clone(), writer_options(&config));
    let index = Arc::new(Index::default());
    // Release changes re-queue their Environment through this channel, fed by the Release
    // reflector: no second watch of every Release for the Environment controller.
    let (env_tx, env_rx) = futures::channel::mpsc::unbounded();
    // The notifier re-queues an Environment when a receiver's health changes.
    let notify_tx = env_tx.clone();
    let (release_controller, store, environments) =
        release_controller(&client, &config, index.clone(), env_tx);
    let metrics = Arc::new(
        Metrics::default()
            .with_state(store.clone(), writer.clone())
            .with_concurrency(config.concurrency.max(1)),
    );
    let admin = start_admin(&config, metrics.clone());
    let notifier = Arc::new(super::notify::Notifier::new(
        Some(client.clone()),
        metrics.clone(),
        Some(notify_tx),
        super::notify::Options::default(),
    ));
    let ctx = Arc::new(Context {
        client: client.clone(),
        writer,
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: config.reporter.clone(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        releases: store.clone(),
        environments,
        index,
        scopes: Default::default(),
        config: config.clone(),
        metrics,
        events: Default::default(),
        nudges: Default::default(),
        failures: Mutex::default(),
        probes: Mutex::default(),
        credentials: Mutex::default(),
        notifier,
        clusters: Default::default(),
    });

    if let Some(le) = &config.leader_election {
        // A follower is healthy and ready: it is doing its job, which is to wait.
        admin.ready.store(true, Ordering::Relaxed);
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
    admin.ready.store(true, Ordering::Relaxed);

    let concurrency = config.concurrency.max(1);
    let releases_done = release_controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(stopped(rx.clone()))
        .run(release::reconcile, release::error_policy, ctx.clone())
        .for_each(|res| async move {
            if let Err(err) = res {
                tracing::debug!(error = %err, "release reconcile");
            }
        });
    let environments_done = environment_controller(&client, ctx, store, env_rx, rx);
    tracing::info!(namespaces = ?config.namespaces, cache = %config.cache_dir.display(), "controllers started");
    futures::join!(releases_done, environments_done);
    Ok(())
}

/// The writer's timeouts from `--git-timeout`: a silent server fails an operation after it,
/// connecting gets a third of it (at least 5 s), and a call to a worker, which may wait for
/// other work of the same repository, four times it (at least two minutes).
fn writer_options(config: &Config) -> WriterOptions {
    let io = config.git_timeout;
    WriterOptions {
        io_timeout: io,
        connect_timeout: (io / 3).max(std::time::Duration::from_secs(5)),
        ask_timeout: (io * 4).max(std::time::Duration::from_secs(120)),
        ..WriterOptions::default()
    }
}

/// The watch of the Releases this controller reconciles and of the Environments it
/// reconciles: every one, or only those whose labels match `--watch-label-selector` (to
/// split the work between shards, or to keep a test's controller to its own objects).
fn watch_config(config: &Config) -> watcher::Config {
    let base = watcher::Config::default().any_semantic();
    match &config.label_selector {
        Some(selector) => base.labels(selector),
        None => base,
    }
}

/// Every 30 s, hands the heap that was freed back to the system. glibc keeps freed memory in
/// its arenas; after a relist of 10,000 Releases (pages of JSON decoded and dropped) that is
/// tens of megabytes the process holds but does not use.
#[allow(unsafe_code)] // the one unsafe call of the crate: glibc's malloc_trim
async fn trim_heap() {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks and releases the allocator's own free lists.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Resolves once shutdown was asked for.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Asks for shutdown on SIGTERM or Ctrl-C.
async fn on_signal(tx: watch::Sender<bool>) {
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

fn start_admin(config: &Config, metrics: Arc<Metrics>) -> Arc<Admin> {
    let admin = Arc::new(Admin {
        metrics,
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
    admin
}

/// The Release controller: its reflector (which feeds the index first) and the watches
/// that re-queue Releases when their Environment or Flux Kustomization changes.
fn release_controller(
    client: &Client,
    config: &Config,
    index: Arc<Index>,
    environments: EnvTrigger,
) -> (Controller<Release>, Store<Release>, Store<Environment>) {
    // The reflector keeps every Release in memory: drop what Tumbler never reads (the
    // last-applied annotation, managedFields but for the one entry that says who last
    // changed the spec) so 10,000 Releases stay small.
    let releases: Api<Release> = api_for(client, config.api_scope());
    let (store, store_writer) = kube::runtime::reflector::store();
    let fed = index.clone();
    // Followers of a changed Release (promotion), re-queued from the reflector's events.
    let (followers, followers_rx) = futures::channel::mpsc::unbounded();
    let release_stream = kube::runtime::reflector(
        store_writer,
        watcher::watcher(releases, watch_config(config))
            .default_backoff()
            .only_watched(config)
            .modify(|rel: &mut Release| {
                rel.keep_spec_manager_only();
                rel.annotations_mut()
                    .remove("kubectl.kubernetes.io/last-applied-configuration");
            })
            .inspect(move |event| {
                if let Ok(event) = event {
                    fed.observe(event);
                    if let watcher::Event::Apply(rel)
                    | watcher::Event::Delete(rel)
                    | watcher::Event::InitApply(rel) = event
                    {
                        let (ns, name) = rel.environment_key();
                        // The receiver is gone only when the process stops.
                        let _ = environments
                            .unbounded_send(ObjectRef::<Environment>::new(&name).within(&ns));
                        // Promotion: a change of an upstream wakes its followers.
                        let upstream = (rel.namespace().unwrap_or_default(), rel.name_any());
                        for (ns, name) in fed.followers(&upstream) {
                            let _ = followers
                                .unbounded_send(ObjectRef::<Release>::new(&name).within(&ns));
                        }
                    }
                }
            }),
    )
    .applied_objects();
    // A change to an Environment re-queues the Releases that name it; the Environments are
    // kept (they are few) so that reconciles read them without a GET. This watch is not
    // filtered by the label selector: a Release may name an Environment of another shard,
    // and the overlap check must see every Environment's write target (docs/SHARDING.md).
    let by_env = index.clone();
    let (env_store, env_writer) = kube::runtime::reflector::store();
    let env_stream = kube::runtime::reflector(
        env_writer,
        watcher::watcher(
            api_for::<Environment>(client, config.api_scope()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .only_watched(config)
        .modify(|env: &mut Environment| {
            env.managed_fields_mut().clear();
            env.annotations_mut()
                .remove("kubectl.kubernetes.io/last-applied-configuration");
        }),
    )
    .touched_objects();
    let controller = Controller::for_stream(release_stream, store.clone())
        .reconcile_on(followers_rx)
        .watches_stream(env_stream, move |env: Environment| {
            by_env.environment(&env);
            by_env
                .users(&(env.namespace().unwrap_or_default(), env.name_any()))
                .into_iter()
                .map(|(ns, name)| ObjectRef::<Release>::new(&name).within(&ns))
                .collect::<Vec<_>>()
        });
    (with_flux_watch(controller, client, index), store, env_store)
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

/// The Environment controller: this shard's Environments only. It starts once the Release
/// cache has synced: before that it would see no users and could let an Environment with
/// Releases go. Release changes of this shard re-queue their Environment (the release
/// count), coalesced; they arrive from the Release reflector (`releases_changed`), not from
/// a second watch. A Release naming an Environment of another shard maps to an object this
/// controller does not hold, and is skipped.
async fn environment_controller(
    client: &Client,
    ctx: Arc<Context>,
    synced: Store<Release>,
    releases_changed: futures::channel::mpsc::UnboundedReceiver<ObjectRef<Environment>>,
    rx: watch::Receiver<bool>,
) {
    if synced.wait_until_ready().await.is_err() {
        return;
    }
    let config = &ctx.config;
    watched_environments(client, config)
        .reconcile_on(releases_changed)
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(config.concurrency.max(1))
                .debounce(std::time::Duration::from_secs(2)),
        )
        .graceful_shutdown_on(stopped(rx))
        .run(
            environment::reconcile,
            environment::error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Err(err) = res {
                tracing::debug!(error = %err, "environment reconcile");
            }
        })
        .await
}

/// The Environment controller's own watch (this shard's, of the watched namespaces).
fn watched_environments(client: &Client, config: &Config) -> Controller<Environment> {
    let (store, writer) = kube::runtime::reflector::store();
    let watch = watcher::watcher(
        api_for::<Environment>(client, config.api_scope()),
        watch_config(config),
    )
    .default_backoff()
    .only_watched(config);
    Controller::for_stream(
        kube::runtime::reflector(writer, watch).applied_objects(),
        store,
    )
}

/// The field manager of this process's writes to the Lease. The lease manager takes the
/// lease with a server-side apply and counts on a conflict between two candidates' field
/// managers to refuse the second: one manager name shared by every replica let two
/// candidates that tried at the same moment both "acquire" it (seen in the e2e suite: two
/// leaders pushing at once). So it is unique per identity, within the API's 128 characters.
fn lease_field_manager(identity: &str) -> String {
    let mut name = format!("{}-lease-{identity}", super::MANAGER);
    if name.len() > 128 {
        let mut cut = 128;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

/// Waits until this process holds the Lease (or shutdown is asked for: `None`). Returns the
/// channel that turns false when the lease is lost.
async fn lead(
    client: &Client,
    le: &LeaderElection,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<watch::Receiver<bool>>, Error> {
    use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
    let grace = (le.lease_seconds / 3).max(1);
    let manager = LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.namespace)
        .with_identity(&le.identity)
        .with_duration(le.lease_seconds)
        .with_grace(grace)
        .with_field_manager(lease_field_manager(&le.identity))
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

#[cfg(test)]
mod tests {
    use super::lease_field_manager;

    #[test]
    fn each_lease_candidate_writes_as_its_own_field_manager() {
        let a = lease_field_manager("tumbler-7d9f-abcde");
        let b = lease_field_manager("tumbler-7d9f-fghij");
        assert_ne!(a, b);
        assert!(a.contains("tumbler-7d9f-abcde"));
        let long = lease_field_manager(&"x".repeat(300));
        assert!(long.len() <= 128);
    }
}
