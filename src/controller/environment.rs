//! The Environment reconciler, observe → decide → act like the Release one: is the
//! repository reachable, does the branch exist, what is its head, are the Flux
//! Kustomizations that apply it healthy; and an Environment stays while Releases use it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::controller::Action;
use tracing::{Instrument, info_span, warn};

use crate::api::{
    self, Conditioned, Environment, EnvironmentStatus, Release, Status, condition, find_condition,
    remove_condition, set_condition,
};
use crate::flux::{FluxObject, kustomization_resource};
use crate::gitops::RepoKey;

use super::Error;
use super::context::{Context, RESYNC};
use super::metrics::Controller;
use super::reason::Reason;
use super::release::observe::credentials;
use super::remote::CLUSTER_REACHABLE;
use super::status::{Summary, key, now, summarise, with_finalizer, write_status};

/// The Flux condition type on Environments.
const FLUX_READY: &str = "FluxReady";

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile(Controller::Environment);
    let span = info_span!("environment", namespace = %env.namespace().unwrap_or_default(), name = %env.name_any());
    let result = with_finalizer(&ctx, env, |e| apply(e, &ctx), |e| cleanup(e, &ctx))
        .instrument(span)
        .await;
    timer.finish(&result);
    result
}

pub fn error_policy(env: Arc<Environment>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(namespace = %env.namespace().unwrap_or_default(), name = %env.name_any(), reason = %err.reason(), error = %err, "reconcile failed");
    Action::requeue(ctx.backoff(&key(&*env)))
}

/// What an Environment reconcile looks at.
#[derive(Debug)]
pub struct Observed {
    /// Releases that name it.
    pub users: usize,
    /// An older Environment writing to an equal or nested folder (`namespace`, `name`).
    pub overlaps: Option<(String, String)>,
    /// The branch head, when the repository was probed (`None`: suspended, or probed
    /// successfully a moment ago at this generation).
    pub probe: Option<Result<String, Error>>,
    /// Each Kustomization it names: `namespace/name` and what was found.
    pub flux: Vec<(String, FluxState)>,
    /// With `spec.cluster`: whether the workload cluster answers (what it said), or why not.
    pub cluster: Option<Result<String, Error>>,
}

#[derive(Debug)]
pub enum FluxState {
    Ready,
    Suspended,
    Failing { reason: String, message: String },
    NotFound,
    Unknown(String),
}

async fn observe(ctx: &Context, env: &Environment) -> Observed {
    let ns = env.namespace().unwrap_or_default();
    let users = ctx.index.users(&(ns.clone(), env.name_any())).len();
    ctx.index.environment(env);
    let overlaps = ctx.index.overlapping(env);
    let repo = RepoKey {
        url: env.spec.repository.url.clone(),
        branch: env.spec.repository.branch.clone(),
    };
    let fresh = ctx.recently_probed(&key(env), env.metadata.generation)
        && env.status.as_ref().is_some_and(|s| s.head.is_some())
        && env.is_true(api::READY);
    let probe = if env.spec.suspend || fresh || overlaps.is_some() {
        None
    } else {
        Some(match credentials(ctx, env).await {
            Ok(creds) => ctx.writer.probe(repo, creds).await.map_err(Error::from),
            Err(e) => Err(e),
        })
    };
    // The Kustomizations live in the workload cluster, when the Environment names one.
    let (workloads, cluster) = match (&env.spec.cluster, ctx.workloads(env, true).await) {
        (None, Ok(wl)) => (Ok(wl), None),
        (_, Ok(wl)) => {
            let answer = wl.client.apiserver_version().await.map_err(|e| wl.error(e));
            let answer = answer.map(|v| {
                format!(
                    "API server {} answers (Kubernetes {})",
                    wl.tag(),
                    v.git_version
                )
            });
            match answer {
                Ok(said) => (Ok(wl), Some(Ok(said))),
                Err(e) => (Err(e.to_string()), Some(Err(e))),
            }
        }
        (_, Err(e)) => (Err(e.to_string()), Some(Err(e))),
    };
    let mut flux = vec![];
    for ks in env.spec.flux.iter().flat_map(|f| f.kustomizations.iter()) {
        let ks_ns = ks.namespace.clone().unwrap_or_else(|| ns.clone());
        let wl = match &workloads {
            Ok(wl) => wl,
            Err(e) => {
                flux.push((
                    format!("{ks_ns}/{}", ks.name),
                    FluxState::Unknown(e.clone()),
                ));
                continue;
            }
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(wl.client.clone(), &ks_ns, &kustomization_resource());
        let state = match api.get_opt(&ks.name).await {
            Ok(Some(obj)) => {
                let k = FluxObject::from_dynamic(&obj);
                match k.ready().filter(|r| r.status == "False") {
                    _ if k.suspended => FluxState::Suspended,
                    Some(r) => FluxState::Failing {
                        reason: r.reason.clone(),
                        message: r.message.clone(),
                    },
                    None => FluxState::Ready,
                }
            }
            Ok(None) => FluxState::NotFound,
            Err(e) => FluxState::Unknown(e.to_string()),
        };
        flux.push((format!("{ks_ns}/{}", ks.name), state));
    }
    Observed {
        users,
        overlaps,
        probe,
        flux,
        cluster,
    }
}

/// How often an Environment with Flux objects is looked at again: their state is not
/// watched here.
const FLUX_POLL: Duration = Duration::from_secs(30);

/// The next status of an Environment, its summary, and whether the probe failed.
pub fn decide(env: &Environment, obs: &Observed, now: &Time) -> (EnvironmentStatus, Summary) {
    let old = env.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.releases = obs.users as u32;
    let summary = match &obs.probe {
        _ if obs.overlaps.is_some() => {
            let (ns, name) = obs.overlaps.clone().unwrap_or_default();
            Summary::of_error(&Error::OverlappingEnvironment {
                environment: format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any()),
                other: format!("{ns}/{name}"),
            })
        }
        _ if env.spec.suspend => Summary::Progressing {
            reason: Reason::Suspended,
            message: "spec.suspend is true: Tumbler does not write to this repository".into(),
        },
        None => Summary::Ready {
            reason: Reason::RepositoryReady,
            message: find_condition(&old.conditions, api::READY)
                .map(|c| c.message.clone())
                .unwrap_or_default(),
        },
        Some(Ok(head)) => {
            st.head_short = Some(head.chars().take(8).collect());
            st.head = Some(head.clone());
            Summary::Ready {
                reason: Reason::RepositoryReady,
                message: format!(
                    "branch {} at {}",
                    env.spec.repository.branch,
                    st.head_short.clone().unwrap_or_default()
                ),
            }
        }
        Some(Err(e)) => Summary::of_error(e),
    };
    flux_condition(&mut st, obs, env.metadata.generation, now);
    cluster_condition(&mut st, obs, env.metadata.generation, now);
    helm_policy_condition(&mut st, env, now);
    summarise(&mut st.conditions, &summary, env.metadata.generation, now);
    st.observed_generation = env.metadata.generation;
    (st, summary)
}

/// `ClusterReachable`, on Environments with `spec.cluster`: whether the workload cluster's
/// API server answers, or why it cannot be read (reason and message, never credentials).
fn cluster_condition(
    st: &mut EnvironmentStatus,
    obs: &Observed,
    generation: Option<i64>,
    now: &Time,
) {
    let c = match &obs.cluster {
        None => {
            remove_condition(&mut st.conditions, CLUSTER_REACHABLE);
            return;
        }
        Some(Ok(said)) => condition(
            CLUSTER_REACHABLE,
            Status::True,
            Reason::ClusterReachable.as_str(),
            said.clone(),
            generation,
        ),
        Some(Err(e)) => condition(
            CLUSTER_REACHABLE,
            Status::False,
            e.reason().as_str(),
            format!("{e}; its Releases wait (Ready=Unknown) until it answers"),
            generation,
        ),
    };
    set_condition(&mut st.conditions, c, now.clone());
}

/// The condition type saying whether `allowClusterScoped: false` holds for Helm charts.
const HELM_POLICY: &str = "HelmPolicyEnforced";

/// `HelmPolicyEnforced`: Helm charts are rendered by helm-controller, not by Tumbler, so the
/// policy cannot see their objects; only Flux impersonating the team's account (Kubernetes
/// RBAC) can hold `allowClusterScoped: false` for them. Says which case this Environment is
/// in, instead of letting charts through silently.
fn helm_policy_condition(st: &mut EnvironmentStatus, env: &Environment, now: &Time) {
    if env.spec.policy.allow_cluster_scoped {
        remove_condition(&mut st.conditions, HELM_POLICY);
        return;
    }
    let per_app = env.spec.flux.as_ref().is_some_and(|f| f.per_app);
    let c = match &env.spec.releases.service_account_name {
        Some(account) if per_app => condition(
            HELM_POLICY,
            Status::True,
            Reason::Impersonated.as_str(),
            format!(
                "Helm charts of Releases from other namespaces are installed as their namespace's ServiceAccount {account:?}, so Kubernetes RBAC refuses what they may not create; charts of Releases in this namespace run with helm-controller's rights"
            ),
            env.metadata.generation,
        ),
        _ => condition(
            HELM_POLICY,
            Status::False,
            Reason::NotImpersonated.as_str(),
            "allowClusterScoped: false is checked on what Tumbler renders, but Helm charts are rendered by helm-controller with its own rights: their cluster-scoped objects are not checked. Set spec.releases.serviceAccountName (with spec.flux.perApp) so that Flux installs them as the team's account",
            env.metadata.generation,
        ),
    };
    set_condition(&mut st.conditions, c, now.clone());
}

/// `FluxReady`: whether the Kustomizations the Environment names exist, run and succeed.
/// False (`NoFluxKustomization`) when it names none: its Releases are committed, but nothing
/// tells Tumbler that they are applied, so they are never Ready.
fn flux_condition(st: &mut EnvironmentStatus, obs: &Observed, generation: Option<i64>, now: &Time) {
    if obs.flux.is_empty() {
        let c = condition(
            FLUX_READY,
            Status::False,
            Reason::NoFluxKustomization.as_str(),
            "spec.flux.kustomizations names no Flux Kustomization: Releases are committed (condition Committed) but their apply is not verified, so they stay Ready=False with reason NotVerified",
            generation,
        );
        set_condition(&mut st.conditions, c, now.clone());
        return;
    }
    let mut problems = vec![];
    let mut reason = Reason::KustomizationsReady;
    for (name, state) in &obs.flux {
        match state {
            FluxState::Ready => {}
            FluxState::Suspended => {
                reason = Reason::FluxSuspended;
                problems.push(format!("Kustomization {name} is suspended"));
            }
            FluxState::Failing { reason: r, message } => {
                reason = Reason::FluxFailing;
                problems.push(format!("Kustomization {name} is failing ({r}): {message}"));
            }
            FluxState::NotFound => {
                reason = Reason::FluxKustomizationNotFound;
                problems.push(format!("Kustomization {name} does not exist"));
            }
            FluxState::Unknown(e) => {
                reason = Reason::FluxUnknown;
                problems.push(format!("Kustomization {name}: {e}"));
            }
        }
    }
    let c = if problems.is_empty() {
        condition(
            FLUX_READY,
            Status::True,
            reason.as_str(),
            "every Kustomization that applies this Environment is ready",
            generation,
        )
    } else {
        condition(
            FLUX_READY,
            Status::False,
            reason.as_str(),
            problems.join("; "),
            generation,
        )
    };
    set_condition(&mut st.conditions, c, now.clone());
}

async fn apply(env: Arc<Environment>, ctx: &Context) -> Result<Action, Error> {
    let object_key = key(&*env);
    let observed = observe(ctx, &env).await;
    let now = now();
    let (mut st, summary) = decide(&env, &observed, &now);
    ctx.notifier.configure(&env);
    let receivers = super::notify::receiver_names(&env);
    let health = ctx.notifier.health(&env, &receivers);
    super::notify::delivered_condition(&mut st, &env, &health, &now);
    let cluster_failed = matches!(observed.cluster, Some(Err(_)));
    let mut requeue = match &observed.probe {
        Some(Err(_)) => ctx.backoff(&object_key),
        Some(Ok(_)) => {
            ctx.succeeded(&object_key);
            ctx.probed(&object_key, env.metadata.generation);
            RESYNC
        }
        None => RESYNC,
    };
    if cluster_failed {
        // Back off, but look again within the Flux poll: its Releases wait on this.
        requeue = ctx.backoff(&format!("{object_key}/cluster"));
    } else if observed.cluster.is_some() {
        ctx.succeeded(&format!("{object_key}/cluster"));
    }
    if !observed.flux.is_empty() {
        requeue = requeue.min(FLUX_POLL);
    }
    if let Summary::Stalled { .. } | Summary::Progressing { .. } = summary {
        warn!(reason = %summary.reason(), message = %summary.message(), "environment not ready");
    }
    let old = env.status.clone().unwrap_or_default();
    write_status(ctx, &*env, &old, &old.conditions, &st, &st.conditions).await?;
    Ok(Action::requeue(requeue))
}

/// An Environment with Releases stays (and says so) until they are gone, so that each
/// Release can still remove its app folder from git on deletion.
async fn cleanup(env: Arc<Environment>, ctx: &Context) -> Result<Action, Error> {
    let users = users_in_every_shard(ctx, &env).await?;
    if users.is_empty() {
        ctx.forget(&key(&*env));
        ctx.forget_credentials(&env);
        ctx.notifier.forget(&env);
        ctx.clusters.forget(&env);
        ctx.forget(&format!("{}/cluster", key(&*env)));
        return Ok(Action::await_change());
    }
    let old = env.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let message = format!(
        "deletion waits for {} Release(s) that use this Environment: {}; delete them first",
        users.len(),
        users.join(", ")
    );
    summarise(
        &mut st.conditions,
        &Summary::Progressing {
            reason: Reason::DeletionBlocked,
            message: message.clone(),
        },
        env.metadata.generation,
        &now(),
    );
    write_status(ctx, &*env, &old, &old.conditions, &st, &st.conditions).await?;
    Err(Error::Finalizer(message))
}

/// The Releases that name an Environment, as `namespace/name`, sorted. Without a label
/// selector the index holds every Release this controller may see. With one it holds only
/// this shard's, while a Release of another shard (or of none) may name this Environment
/// too: then the API server is asked, a paginated LIST of every Release, which only an
/// Environment's deletion costs. An error keeps the Environment (the finalizer stays).
async fn users_in_every_shard(ctx: &Context, env: &Environment) -> Result<Vec<String>, Error> {
    let env_key = (env.namespace().unwrap_or_default(), env.name_any());
    let mut users: Vec<(String, String)> = ctx.index.users(&env_key);
    if ctx.config.label_selector.is_some() {
        let api: Api<Release> = match ctx.config.api_scope() {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await?;
            users.extend(
                page.items
                    .iter()
                    .filter(|rel| rel.environment_key() == env_key)
                    .map(|rel| (rel.namespace().unwrap_or_default(), rel.name_any())),
            );
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    users.sort();
    users.dedup();
    Ok(users
        .into_iter()
        .map(|(ns, name)| format!("{ns}/{name}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(spec: serde_json::Value) -> Environment {
        let mut doc = serde_json::json!({
            "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": "production", "namespace": "platform", "generation": 2},
            "spec": {"repository": {"url": "https://git.example/x.git", "path": "envs/prod"}},
        });
        if let Some(extra) = spec.as_object() {
            for (k, v) in extra {
                doc["spec"][k] = v.clone();
            }
        }
        serde_json::from_value(doc).unwrap()
    }

    fn observed(probe: Result<String, Error>, overlaps: Option<(String, String)>) -> Observed {
        Observed {
            users: 3,
            overlaps,
            probe: Some(probe),
            flux: vec![],
            cluster: None,
        }
    }

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(100).unwrap())
    }

    #[test]
    fn an_environment_says_whether_helm_charts_are_held_by_its_policy() {
        let helm_policy = |spec| {
            let e = env(spec);
            let (st, _) = decide(&e, &observed(Ok("abc".into()), None), &now());
            find_condition(&st.conditions, HELM_POLICY)
                .map(|c| (c.status.clone(), c.reason.clone()))
        };
        let not = Some(("False".to_string(), "NotImpersonated".to_string()));
        assert_eq!(helm_policy(serde_json::json!({})), not);
        let impersonated = serde_json::json!({"flux": {"perApp": true, "gitRepository": {"name": "g"}},
            "releases": {"serviceAccountName": "flux-apply"}});
        assert_eq!(
            helm_policy(impersonated),
            Some(("True".to_string(), "Impersonated".to_string()))
        );
        let without_per_app = serde_json::json!({"releases": {"serviceAccountName": "flux-apply"}});
        assert_eq!(helm_policy(without_per_app), not);
        assert_eq!(
            helm_policy(serde_json::json!({"policy": {"allowClusterScoped": true}})),
            None
        );
    }

    #[test]
    fn a_workload_cluster_says_whether_it_answers_without_credentials() {
        use crate::controller::remote::RemoteError;
        let e = env(serde_json::json!({"cluster": {"kubeconfigSecretRef": {"name": "workload"}}}));
        let reachable = |cluster: Option<Result<String, Error>>| {
            let mut obs = observed(Ok("abc".into()), None);
            obs.cluster = cluster;
            let (st, summary) = decide(&e, &obs, &now());
            assert_eq!(api::kstatus_violation(&st.conditions), None);
            // The repository is still fine: Ready is about it.
            assert_eq!(summary.reason(), Reason::RepositoryReady);
            find_condition(&st.conditions, CLUSTER_REACHABLE)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        };
        let (status, reason, message) =
            reachable(Some(Ok("API server https://w answers".into()))).unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "ClusterReachable")
        );
        assert!(message.contains("https://w"));
        let (status, reason, message) =
            reachable(Some(Err(Error::Remote(RemoteError::Unreachable {
                server: "https://w".into(),
                message: "client error (Connect)".into(),
            }))))
            .unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "ClusterUnreachable")
        );
        assert!(message.contains("https://w") && message.contains("Ready=Unknown"));
        let (status, reason, _) =
            reachable(Some(Err(Error::Remote(RemoteError::InvalidKubeconfig {
                namespace: "platform".into(),
                name: "workload".into(),
                problem: "exec plugins are refused".into(),
            }))))
            .unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "InvalidKubeconfig")
        );
        assert_eq!(reachable(None), None);
    }

    #[test]
    fn an_overlapping_environment_is_stalled_naming_the_older_one_and_not_probed() {
        let e = env(serde_json::json!({}));
        let (st, summary) = decide(
            &e,
            &observed(Ok("abc".into()), Some(("platform".into(), "older".into()))),
            &now(),
        );
        assert_eq!(summary.reason(), Reason::OverlappingEnvironment);
        assert!(summary.message().contains("platform/older"));
        assert_eq!(api::kstatus_violation(&st.conditions), None);
        assert_eq!(st.releases, 3);
        let (st, summary) = decide(&e, &observed(Ok("0123456789".into()), None), &now());
        assert_eq!(summary.reason(), Reason::RepositoryReady);
        let flux = find_condition(&st.conditions, FLUX_READY).unwrap();
        assert_eq!(
            (flux.status.as_str(), flux.reason.as_str()),
            ("False", "NoFluxKustomization")
        );
        assert_eq!(st.head_short.as_deref(), Some("01234567"));
        assert_eq!(st.observed_generation, Some(2));
    }
}
