//! act: carries out what decide chose — the one write to git, the Flux nudge, and the one
//! status write that ends every reconcile, whatever happened before it.

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use tracing::{info, warn};

use crate::api::{Environment, Release};
use crate::flux::{self, FluxObject};
use crate::gitops::Outcome;

use super::super::Error;
use super::super::context::Context;
use super::super::metrics::ReconcileTimer;
use super::super::reason::Reason;
use super::super::remote::Workloads;
use super::super::status::{event, key, publish, write_status};
use super::decide::{Decision, Fault, Plan, Requeue, Stopped, Target, Written};
use super::observe::applying_kustomizations;

/// Submits the change of a plan, if it has one. `Ok`: the files are in git.
pub async fn write<'a>(ctx: &Context, plan: Plan<'a>) -> Result<Written<'a>, Stopped<'a>> {
    match plan {
        Plan::Stop(stopped) => Err(stopped),
        Plan::Compare { written } => Ok(written),
        Plan::Submit {
            env,
            rendered,
            git,
            change,
            move_out,
        } => {
            let target = Target::of(env);
            let version = change.version.clone();
            match ctx
                .writer
                .submit(target.repo.clone(), git.creds.clone(), *change)
                .await
            {
                Ok(outcome) => {
                    let pushed = matches!(outcome, Outcome::Committed { .. });
                    if pushed {
                        info!(commit = %outcome.commit(), %version, "pushed");
                    }
                    if let Some(old) = move_out {
                        // The new folder is written; the old one goes (only if this Release
                        // still owns it: the writer checks). A failure leaves it in place.
                        let path = format!("{}/{}", old.env_path, old.app);
                        match ctx
                            .writer
                            .submit(target.repo.clone(), git.creds.clone(), *old)
                            .await
                        {
                            Ok(_) => {
                                info!(%path, "removed the folder the Environment moved away from")
                            }
                            Err(e) => warn!(%path, error = %e, "could not remove the old folder"),
                        }
                    }
                    Ok(Written {
                        env,
                        rendered,
                        creds: &git.creds,
                        target,
                        commit: outcome.commit().to_string(),
                        pushed,
                        drift: None,
                    })
                }
                Err(e) => Err(Stopped::Failed(Fault::Found(Error::Git(e)))),
            }
        }
    }
}

/// Deletes a Release whose `spec.expiry` passed, with an `Expired` Event; its finalizer
/// then removes the app folder from git, as for any deleted Release.
pub async fn expire(ctx: &Context, rel: &Release, at: jiff::Timestamp) -> Result<Action, Error> {
    let expiry = rel.spec.expiry.clone().unwrap_or_default();
    let note = format!(
        "expired at {at} (spec.expiry: after {} from {:?}); deleting the Release, which removes its app folder {} from git",
        expiry.after, expiry.from, rel.spec.app
    );
    info!(expires_at = %at, "release expired; deleting it");
    publish(ctx, rel, event(Reason::Expired, note, "Delete")).await;
    let api: Api<Release> =
        Api::namespaced(ctx.client.clone(), &rel.namespace().unwrap_or_default());
    let params = kube::api::DeleteParams {
        // Only this very Release: not one created again under the same name meanwhile.
        preconditions: rel.uid().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&rel.name_any(), &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// Ends a reconcile: writes the decided status (always, once), publishes its Events, and
/// says when to look again.
pub async fn finish(
    ctx: &Context,
    rel: &Release,
    decision: Decision,
    timer: &ReconcileTimer,
) -> Result<Action, Error> {
    let object_key = key(rel);
    let reason = decision.summary.reason();
    let requeue = match decision.requeue {
        Requeue::Backoff => {
            warn!(%reason, message = %decision.summary.message(), "release not done");
            timer.fail(reason.as_str());
            ctx.backoff(&object_key)
        }
        Requeue::After(d) => {
            ctx.succeeded(&object_key);
            d
        }
    };
    if let Some((reason, note)) = decision.note {
        publish(ctx, rel, event(reason, note, "Reconcile")).await;
    }
    let old = rel.status.clone().unwrap_or_default();
    write_status(
        ctx,
        rel,
        &old,
        &old.conditions,
        &decision.status,
        &decision.status.conditions,
    )
    .await?;
    Ok(Action::requeue(requeue))
}

/// Asks Flux to fetch and apply now (as `flux reconcile` does) instead of at its next poll.
/// Pushes close together share one nudge per Flux object (the first at once, one more after
/// the last within a second), so a burst of Releases costs Flux's objects a few patches, not
/// one per Release. Failures are logged: Flux still polls.
pub async fn nudge_flux(ctx: &Context, wl: &Workloads, env: &Environment, rel: &Release) {
    let env_ns = env.namespace().unwrap_or_default();
    let ks_res = flux::kustomization_resource();
    let mut all = env
        .spec
        .flux
        .as_ref()
        .map(|f| f.kustomizations.clone())
        .unwrap_or_default();
    for k in applying_kustomizations(env, rel) {
        if !all.contains(&k) {
            all.push(k);
        }
    }
    let mut sources = vec![];
    if let Some(git) = env
        .spec
        .flux
        .as_ref()
        .and_then(|f| f.git_repository.clone())
    {
        sources.push((git.name, git.namespace.unwrap_or_else(|| env_ns.clone())));
    }
    let mut targets = vec![];
    for ks in &all {
        let ns = ks.namespace.clone().unwrap_or_else(|| env_ns.clone());
        if sources.is_empty() {
            let api: Api<DynamicObject> = Api::namespaced_with(wl.client.clone(), &ns, &ks_res);
            if let Ok(Some(obj)) = api.get_opt(&ks.name).await
                && let Some((kind, name, src_ns)) = FluxObject::from_dynamic(&obj).source
                && kind == "GitRepository"
            {
                sources.push((name, src_ns.unwrap_or_else(|| ns.clone())));
            }
        }
        targets.push((ks_res.clone(), ns, ks.name.clone()));
    }
    let git_res = flux::git_repository_resource();
    for (name, ns) in sources {
        targets.push((git_res.clone(), ns, name));
    }
    if targets.is_empty() {
        return;
    }
    // The same names in two clusters are two sets of Flux objects.
    let key = targets
        .iter()
        .map(|(r, ns, name)| format!("{}{}/{ns}/{name}", wl.tag(), r.kind))
        .collect::<Vec<_>>()
        .join(",");
    let client = wl.client.clone();
    if let Some(now) = ctx
        .nudges
        .run(key, move || patch_requested_at(client, targets))
    {
        now.await;
    }
}

/// Sets Flux's `reconcile.fluxcd.io/requestedAt` on each object.
async fn patch_requested_at(
    client: kube::Client,
    targets: Vec<(kube::api::ApiResource, String, String)>,
) {
    let stamp = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {flux::RECONCILE_REQUESTED_AT: stamp}}});
    for (res, ns, name) in targets {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &res);
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            warn!(kind = %res.kind, %name, error = %e, "could not ask Flux to reconcile");
        }
    }
}
