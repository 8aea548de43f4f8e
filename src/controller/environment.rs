//! The Environment reconciler: is the repository reachable, does the branch exist, what is
//! its head; and an Environment stays while Releases still use it.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info_span, warn};

use crate::api::{Conditioned, Environment, EnvironmentStatus};
use crate::gitops::RepoKey;

use super::context::{Context, RESYNC};
use super::status::{Summary, key, now, summarise, transition_event, type_meta};
use super::{Error, FINALIZER, MANAGER};

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = env.namespace().unwrap_or_default();
    let _timer = ctx.metrics.reconcile("Environment");
    let span = info_span!("environment", namespace = %ns, name = %env.name_any());
    let api = ctx.environments_api(&ns);
    async move {
        finalizer(&api, FINALIZER, env, |event| async {
            match event {
                FinalizerEvent::Apply(env) => apply(env, &ctx).await,
                FinalizerEvent::Cleanup(env) => cleanup(env, &ctx).await,
            }
        })
        .await
        .map_err(|e| match e {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(other.to_string()),
        })
    }
    .instrument(span)
    .await
}

pub fn error_policy(env: Arc<Environment>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error("Environment", err.reason());
    warn!(namespace = %env.namespace().unwrap_or_default(), name = %env.name_any(), reason = err.reason(), error = %err, "reconcile failed");
    Action::requeue(ctx.backoff(&key(&*env)))
}

/// Releases in the Environment's namespace that name it.
fn users(ctx: &Context, env: &Environment) -> Vec<String> {
    let ns = env.namespace();
    let mut names: Vec<String> = ctx
        .releases
        .state()
        .into_iter()
        .filter(|r| r.namespace() == ns && r.spec.environment == env.name_any())
        .map(|r| r.name_any())
        .collect();
    names.sort();
    names
}

async fn apply(env: Arc<Environment>, ctx: &Context) -> Result<Action, Error> {
    let object_key = key(&*env);
    let old = env.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let now = now();
    st.releases = users(ctx, &env).len() as u32;

    let repo = RepoKey {
        url: env.spec.repository.url.clone(),
        branch: env.spec.repository.branch.clone(),
    };
    let (summary, requeue) = if env.spec.suspend {
        (
            Summary::Progressing {
                reason: "Suspended",
                message: "spec.suspend is true: Tumbler does not write to this repository".into(),
            },
            RESYNC,
        )
    } else if ctx.recently_probed(&object_key, env.metadata.generation)
        && old.head.is_some()
        && env.is_true(crate::api::READY)
    {
        // Probed a moment ago: only the release count may have changed.
        let message = crate::api::find_condition(&old.conditions, crate::api::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        (
            Summary::Ready {
                reason: "RepositoryReady",
                message,
            },
            RESYNC,
        )
    } else {
        let probe = match super::release::credentials(ctx, &env).await {
            Ok(creds) => ctx
                .writer
                .probe(repo.clone(), creds)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        match probe {
            Ok(head) => {
                ctx.succeeded(&object_key);
                ctx.probed(&object_key, env.metadata.generation);
                st.head_short = Some(head.chars().take(8).collect());
                let message = format!(
                    "branch {} at {}",
                    repo.branch,
                    st.head_short.clone().unwrap_or_default()
                );
                st.head = Some(head);
                (
                    Summary::Ready {
                        reason: "RepositoryReady",
                        message,
                    },
                    RESYNC,
                )
            }
            Err(Error::Kube(e)) => return Err(Error::Kube(e)),
            Err(err) => {
                let requeue = ctx.backoff(&object_key);
                let message = err.to_string();
                if err.stalled() {
                    (
                        Summary::Stalled {
                            reason: err.reason(),
                            message,
                        },
                        requeue,
                    )
                } else {
                    (
                        Summary::Progressing {
                            reason: err.reason(),
                            message,
                        },
                        requeue,
                    )
                }
            }
        }
    };
    flux_condition(ctx, &env, &mut st, &now).await;
    // Flux's state is not watched here; look again soon while Flux objects are named.
    let has_flux = env
        .spec
        .flux
        .as_ref()
        .is_some_and(|f| !f.kustomizations.is_empty());
    let requeue = if has_flux {
        requeue.min(std::time::Duration::from_secs(30))
    } else {
        requeue
    };
    summarise(&mut st.conditions, &summary, env.metadata.generation, &now);
    st.observed_generation = env.metadata.generation;
    write_status(ctx, &env, &old, st).await?;
    Ok(Action::requeue(requeue))
}

/// `FluxReady`: whether the Kustomizations the Environment names exist, run and succeed.
async fn flux_condition(
    ctx: &Context,
    env: &Environment,
    st: &mut EnvironmentStatus,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) {
    use crate::api::{Status, condition, remove_condition, set_condition};
    use crate::flux::{FluxObject, kustomization_resource};
    use kube::api::{Api, DynamicObject};
    let kustomizations = env
        .spec
        .flux
        .as_ref()
        .map(|f| f.kustomizations.clone())
        .unwrap_or_default();
    if kustomizations.is_empty() {
        remove_condition(&mut st.conditions, "FluxReady");
        return;
    }
    let env_ns = env.namespace().unwrap_or_default();
    let mut problems = vec![];
    let mut reason = "KustomizationsReady";
    for ks in &kustomizations {
        let ns = ks.namespace.clone().unwrap_or_else(|| env_ns.clone());
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &ns, &kustomization_resource());
        match api.get_opt(&ks.name).await {
            Ok(Some(obj)) => {
                let k = FluxObject::from_dynamic(&obj);
                if k.suspended {
                    reason = "FluxSuspended";
                    problems.push(format!("Kustomization {ns}/{} is suspended", ks.name));
                } else if let Some(r) = k.ready().filter(|r| r.status == "False") {
                    reason = "FluxFailing";
                    problems.push(format!(
                        "Kustomization {ns}/{} is failing ({}): {}",
                        ks.name, r.reason, r.message
                    ));
                }
            }
            Ok(None) => {
                reason = "FluxKustomizationNotFound";
                problems.push(format!("Kustomization {ns}/{} does not exist", ks.name));
            }
            Err(e) => {
                reason = "FluxUnknown";
                problems.push(format!("Kustomization {ns}/{}: {e}", ks.name));
            }
        }
    }
    let c = if problems.is_empty() {
        condition(
            "FluxReady",
            Status::True,
            reason,
            "every Kustomization that applies this Environment is ready",
            env.metadata.generation,
        )
    } else {
        condition(
            "FluxReady",
            Status::False,
            reason,
            problems.join("; "),
            env.metadata.generation,
        )
    };
    set_condition(&mut st.conditions, c, now.clone());
}

/// An Environment with Releases stays (and says so) until they are gone, so that each
/// Release can still remove its app folder from git on deletion.
async fn cleanup(env: Arc<Environment>, ctx: &Context) -> Result<Action, Error> {
    let users = users(ctx, &env);
    if users.is_empty() {
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
            reason: "DeletionBlocked",
            message: message.clone(),
        },
        env.metadata.generation,
        &now(),
    );
    write_status(ctx, &env, &old, st).await?;
    Err(Error::Finalizer(message))
}

async fn write_status(
    ctx: &Context,
    env: &Environment,
    old: &EnvironmentStatus,
    new: EnvironmentStatus,
) -> Result<(), Error> {
    if let Some(event) = transition_event(&old.conditions, &new.conditions, "Reconcile")
        && let Err(e) = ctx.recorder.publish(&event, &env.object_ref(&())).await
    {
        warn!(error = %e, "could not publish event");
    }
    if *old == new {
        return Ok(());
    }
    let (api_version, kind) = type_meta::<Environment>();
    let body = json!({"apiVersion": api_version, "kind": kind, "status": new});
    ctx.environments_api(&env.namespace().unwrap_or_default())
        .patch_status(
            &env.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}
