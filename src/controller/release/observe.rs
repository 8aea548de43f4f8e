//! observe: reads everything a Release reconcile decides from — its Environment and Secret,
//! the claimants of its app (from the index), its rendering, its app folder in git, and
//! after a write the Flux objects and workloads — into plain structs. Failures are facts
//! here, not early returns: decide turns them into status.

use k8s_openapi::api::apps::v1::Deployment as K8sDeployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};

use crate::api::{Environment, NamespacedObjectRef, Release};
use crate::flux::{self, FluxObject};
use crate::gitops::Credentials;
use crate::render;

use super::super::Error;
use super::super::context::Context;
use super::super::remote::Workloads;
use super::decide::admission;
use super::decide::{
    self, Cluster, Deployment, GitFacts, HelmRelease, Kustomization, KustomizationState, Observed,
    Target, Written,
};

/// Waiting reasons of a container that mean its rollout will not finish by itself.
const STUCK_REASONS: [&str; 5] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
];

/// The first observation: Environment, claimants, rendering, credentials, app folder.
pub async fn release(ctx: &Context, rel: &Release) -> Observed {
    let env_key = rel.environment_key();
    let claimants = ctx.index.claimants(&env_key, &rel.spec.app);
    let (env_ns, env_name) = env_key;
    let env = match ctx.environment(&env_ns, &env_name).await {
        Ok(Some(env)) => Ok(env),
        Ok(None) => Err(Error::EnvironmentNotFound {
            namespace: env_ns,
            name: env_name,
        }),
        Err(e) => Err(Error::Kube(e)),
    };
    let mut obs = Observed {
        env,
        overlaps: None,
        namespace_labels: None,
        claimants,
        rendered: None,
        git: None,
    };
    let Ok(env) = &obs.env else {
        return obs;
    };
    if env.spec.suspend {
        return obs;
    }
    // Nothing is rendered or read through the Environment's credentials for a Release it
    // does not admit.
    obs.overlaps = ctx.index.overlapping(env);
    if admission::needs_namespace_labels(rel, env) {
        obs.namespace_labels = Some(namespace_labels(ctx, rel).await);
    }
    let labels = obs.namespace_labels.as_ref().and_then(|l| l.as_ref().ok());
    if obs.overlaps.is_some() || admission::refusal(rel, env, labels).is_some() {
        return obs;
    }
    let scopes = ctx.scopes.get(&ctx.client).await;
    let rendered = render::render_with(rel, env, scopes.as_deref()).map_err(Error::from);
    // A suspended Release is rendered (to say whether a change waits) but git is not read.
    if let Ok(r) = &rendered
        && !rel.spec.suspend
    {
        let target = Target::of(env);
        let read_folder = decide::needs_folder(rel, r, &target, obs.claimants.len());
        let app = read_folder.then_some(rel.spec.app.as_str());
        obs.git = Some(git(ctx, env, &target, app).await);
    }
    obs.rendered = Some(rendered);
    obs
}

/// The labels of the Release's namespace.
pub(super) async fn namespace_labels(
    ctx: &Context,
    rel: &Release,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let ns = rel.namespace().unwrap_or_default();
    Ok(labels_of_namespace(ctx, &ns).await?.unwrap_or_default())
}

/// The labels of namespace `ns`; `None` when it has none or does not exist.
pub(super) async fn labels_of_namespace(
    ctx: &Context,
    ns: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, kube::Error> {
    let found = Api::<k8s_openapi::api::core::v1::Namespace>::all(ctx.client.clone())
        .get_opt(ns)
        .await?;
    Ok(found.and_then(|n| n.metadata.labels))
}

/// The credentials, and the app folder when `app` is given.
async fn git(
    ctx: &Context,
    env: &Environment,
    target: &Target,
    app: Option<&str>,
) -> Result<GitFacts, Error> {
    let creds = credentials(ctx, env).await?;
    let folder = match app {
        Some(app) => Some(
            ctx.writer
                .read_app(target.repo.clone(), creds.clone(), &target.path, app)
                .await?,
        ),
        None => None,
    };
    Ok(GitFacts { creds, folder })
}

/// The Environment's credentials; remembered, so that a Release can still remove its folder
/// while its namespace is deleted (which removes the Secret before the Releases).
pub async fn credentials(ctx: &Context, env: &Environment) -> Result<Credentials, Error> {
    let creds = crate::credentials::read(&ctx.client, env).await?;
    ctx.remember_credentials(env, &creds);
    Ok(creds)
}

/// The Flux Kustomizations whose applied revision decides whether this Release is applied:
/// the Environment's, or in per-app mode the app's own.
pub fn applying_kustomizations(env: &Environment, rel: &Release) -> Vec<NamespacedObjectRef> {
    match env.spec.flux.as_ref() {
        Some(f) if f.per_app => {
            let (name, namespace) = render::per_app_kustomization(env, rel);
            vec![NamespacedObjectRef {
                name,
                namespace: Some(namespace),
            }]
        }
        Some(f) => f.kustomizations.clone(),
        None => vec![],
    }
}

/// The second observation, after the files are in git: what Flux and the cluster did, read
/// in the cluster Flux runs in (`wl`: this one, or the Environment's workload cluster).
pub async fn cluster(
    ctx: &Context,
    wl: &Workloads,
    rel: &Release,
    w: &Written<'_>,
) -> Result<Cluster, Error> {
    let env_ns = w.env.namespace().unwrap_or_default();
    let res = flux::kustomization_resource();
    let mut cluster = Cluster::default();
    for ks in applying_kustomizations(w.env, rel) {
        let ns = ks.namespace.clone().unwrap_or_else(|| env_ns.clone());
        let name = format!("{ns}/{}", ks.name);
        let api: Api<DynamicObject> = Api::namespaced_with(wl.client.clone(), &ns, &res);
        let state = match api.get_opt(&ks.name).await {
            Ok(Some(obj)) => {
                let obj = FluxObject::from_dynamic(&obj);
                let ready = obj.ready().cloned();
                let applied = contains(ctx, w, &obj.status.last_applied_revision).await?;
                let attempted = contains(ctx, w, &obj.status.last_attempted_revision).await?;
                KustomizationState::Found {
                    suspended: obj.suspended,
                    ready,
                    applied,
                    attempted,
                }
            }
            Ok(None) => KustomizationState::NotFound,
            Err(kube::Error::Api(e)) if e.code == 404 => KustomizationState::NotInstalled,
            Err(e) => return Err(wl.error(e)),
        };
        cluster.kustomizations.push(Kustomization { name, state });
    }
    if cluster.kustomizations.is_empty() || !decide::flux_applied(&cluster.kustomizations) {
        return Ok(cluster);
    }
    let namespace = &w.rendered.namespace;
    if rel.spec.helm.is_some() {
        cluster.helm = Some(
            helm_release(&wl.client, namespace, &rel.spec.app)
                .await
                .map_err(|e| wl.error(e))?,
        );
    }
    cluster.deployments = Some(
        deployments(&wl.client, namespace, &rel.spec.app)
            .await
            .map_err(|e| wl.error(e))?,
    );
    Ok(cluster)
}

/// Whether a Flux revision contains the commit (is it, or descends from it).
async fn contains(
    ctx: &Context,
    w: &Written<'_>,
    revision: &Option<String>,
) -> Result<bool, Error> {
    let Some(applied) = revision.as_deref().and_then(flux::revision_commit) else {
        return Ok(false);
    };
    if applied == w.commit {
        return Ok(true);
    }
    Ok(ctx
        .writer
        .is_ancestor(w.target.repo.clone(), w.creds.clone(), &w.commit, applied)
        .await?)
}

async fn helm_release(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<HelmRelease, kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &flux::helm_release_resource());
    let name = format!("{namespace}/{app}");
    Ok(match api.get_opt(app).await? {
        None => HelmRelease::Missing { name },
        Some(obj) => {
            let hr = FluxObject::from_dynamic(&obj);
            let ready = hr.ready().cloned();
            // helm-controller stamps the generation on its Ready condition also when an
            // install fails, before status.observedGeneration moves.
            let at = |g: Option<i64>| g.is_some() && g == hr.generation;
            HelmRelease::Found {
                name,
                current: at(hr.status.observed_generation)
                    || at(ready.as_ref().and_then(|r| r.observed_generation)),
                ready,
            }
        }
    })
}

async fn deployments(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Vec<Deployment>, kube::Error> {
    let selector = format!("app.kubernetes.io/instance={app},app.kubernetes.io/managed-by=tumbler");
    let list = Api::<K8sDeployment>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let mut out = vec![];
    for d in list.items {
        let spec = d.spec.clone().unwrap_or_default();
        let status = d.status.clone().unwrap_or_default();
        let mut fact = Deployment {
            name: d.name_any(),
            desired: spec.replicas.unwrap_or(1),
            replicas: status.replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            observed: status.observed_generation >= d.metadata.generation,
            deadline_exceeded: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| {
                    c.type_ == "Progressing"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                })
                .map(|c| c.message.unwrap_or_default()),
            pods: vec![],
        };
        // Pods are read only for a rollout that is not done.
        if !fact.done() {
            fact.pods = pod_reasons(client, namespace, &spec).await;
        }
        out.push(fact);
    }
    Ok(out)
}

/// Why a Deployment's pods do not run: `(stuck, text)`. Unschedulable pods are reported,
/// not stuck. A failed read gives no reasons (the replica counts still tell).
async fn pod_reasons(
    client: &kube::Client,
    namespace: &str,
    spec: &k8s_openapi::api::apps::v1::DeploymentSpec,
) -> Vec<(bool, String)> {
    let Some(labels) = spec.selector.match_labels.as_ref() else {
        return vec![];
    };
    let sel = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let Ok(pods) = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&sel))
        .await
    else {
        return vec![];
    };
    let mut reasons = vec![];
    for p in pods.items {
        let pod = p.name_any();
        let status = p.status.unwrap_or_default();
        for cs in status.container_statuses.unwrap_or_default() {
            if let Some(r) = cs
                .state
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason)
                .filter(|r| STUCK_REASONS.contains(&r.as_str()))
            {
                reasons.push((true, format!("pod {pod} container {}: {r}", cs.name)));
            }
        }
        if let Some(c) = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        {
            reasons.push((
                false,
                format!(
                    "pod {pod}: {}",
                    c.message.unwrap_or_else(|| "unschedulable".into())
                ),
            ));
        }
    }
    reasons.sort();
    reasons.dedup();
    reasons
}

/// What the deletion of a Release decides from.
#[derive(Debug)]
pub struct Deleting {
    /// `Ok(None)`: the Environment is gone.
    pub env: Result<Option<Environment>, Error>,
    /// Credentials and the owner recorded in the app folder (`None` when there is no
    /// Environment to write to).
    pub git: Option<Result<(Credentials, Option<String>), Error>>,
}

/// Observes what the deletion of a Release needs. When the Secret is already gone (a
/// namespace being deleted removes it before the Releases), the credentials this process
/// read earlier are used.
pub async fn deletion(ctx: &Context, rel: &Release) -> Deleting {
    let (env_ns, env_name) = rel.environment_key();
    let env = ctx
        .environments_api(&env_ns)
        .get_opt(&env_name)
        .await
        .map_err(Error::Kube);
    let git = match &env {
        Ok(Some(env)) => Some(deletion_git(ctx, env, &rel.spec.app).await),
        _ => None,
    };
    Deleting { env, git }
}

async fn deletion_git(
    ctx: &Context,
    env: &Environment,
    app: &str,
) -> Result<(Credentials, Option<String>), Error> {
    let creds = match credentials(ctx, env).await {
        Err(Error::Credentials(e))
            if !matches!(e, crate::credentials::CredentialsError::Kube(_)) =>
        {
            ctx.remembered_credentials(env)
                .ok_or(Error::Credentials(e))?
        }
        other => other?,
    };
    let target = Target::of(env);
    let files = ctx
        .writer
        .read_app(target.repo.clone(), creds.clone(), &target.path, app)
        .await?;
    let owner = files
        .as_ref()
        .and_then(|f| f.get(".tumbler/release.yaml"))
        .and_then(|b| decide::owner_of(b));
    Ok((creds, owner))
}
