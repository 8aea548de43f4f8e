//! The Release reconciler: observe → decide → act.
//!
//! - [`observe`] reads the Environment, Secret, claimants, rendering and app folder into
//!   [`decide::Observed`]; after a write, the Flux objects and workloads into
//!   [`decide::Cluster`].
//! - [`decide`] is pure: [`decide::plan`] chooses the change to submit (or why none),
//!   [`decide::status`] computes the complete next status — phase and conditions, once.
//! - [`act`] submits the change, nudges Flux and writes the status exactly once, always.
//!
//! Deletion follows the same shape: [`observe::deletion`], [`decide::deletion`], and one
//! submit that removes the app folder.

pub mod act;
pub mod decide;
pub mod observe;
pub mod promote;
pub mod rollback;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{Instrument, info, info_span, warn};

use crate::api::Release;

use super::Error;
use super::context::Context;
use super::metrics::{Controller, ReconcileTimer};
use super::notify;
use super::status::{event, key, now, publish, with_finalizer};
use decide::{Deletion, Facts, Progress};

/// Entry point of the Release controller.
pub async fn reconcile(rel: Arc<Release>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx.metrics.reconcile(Controller::Release);
    let span = info_span!("release", namespace = %rel.namespace().unwrap_or_default(), name = %rel.name_any());
    let result = with_finalizer(&ctx, rel, |r| apply(r, &ctx, &timer), |r| cleanup(r, &ctx))
        .instrument(span)
        .await;
    timer.finish(&result);
    result
}

/// Retry with backoff after an error the reconcile could not turn into status (counted by
/// the reconcile's timer).
pub fn error_policy(rel: Arc<Release>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(namespace = %rel.namespace().unwrap_or_default(), name = %rel.name_any(), reason = %err.reason(), error = %err, "reconcile failed");
    Action::requeue(ctx.backoff(&key(&*rel)))
}

async fn apply(rel: Arc<Release>, ctx: &Context, timer: &ReconcileTimer) -> Result<Action, Error> {
    if let Some(at) = decide::control::expired(&rel, now().0) {
        return act::expire(ctx, &rel, at).await;
    }
    // A rollback request changes the spec first; the next reconcile commits it.
    if rel.rollback_request().is_some() {
        return rollback::resolve(ctx, &rel).await;
    }
    let observed = observe::release(ctx, &rel).await;
    let promotion = promote::run(ctx, &rel, observed.env.as_ref().ok()).await;
    let plan = decide::plan(&rel, &observed);
    // The `Tumbler-Action` of the commit this reconcile submits, for the notifications.
    let action = match &plan {
        decide::Plan::Submit { change, .. } => Some(change.kind.action()),
        _ => None,
    };
    let progress = match act::write(ctx, plan).await {
        Ok(written) => {
            // Flux and the workloads live in the Environment's workload cluster, if it names
            // one (`spec.cluster`), else here.
            let cluster = match ctx.workloads(written.env, false).await {
                Ok(wl) => {
                    if written.pushed && ctx.config.nudge_flux {
                        act::nudge_flux(ctx, &wl, written.env, &rel).await;
                    }
                    observe::cluster(ctx, &wl, &rel, &written).await
                }
                Err(e) => Err(e),
            };
            Progress::InGit(written, Box::new(cluster))
        }
        Err(stopped) => Progress::Stopped(stopped),
    };
    let now = now();
    let mut decision = decide::status(&Facts {
        release: &rel,
        now: now.clone(),
        rendered: observed.rendered.as_ref(),
        progress,
    });
    promote::apply_to(&mut decision, promotion, &rel);
    let uid = rel.uid().unwrap_or_default();
    let notify = match &observed.env {
        Ok(env) if env.spec.notifications.is_some() => {
            let old = ctx
                .notifier
                .seen(&uid)
                .unwrap_or_else(|| notify::Seen::of(&rel.status.clone().unwrap_or_default()));
            let (sent, seen) = notify::transitions(&rel, &old, &decision.status, action, &now);
            Some((env, sent, seen))
        }
        _ => None,
    };
    let next = act::finish(ctx, &rel, decision, timer).await?;
    // Only once the status that shows them is written: a failed write is retried, and the
    // transitions are found again against the same old status.
    if let Some((env, sent, seen)) = notify {
        ctx.notifier.saw(&uid, seen);
        ctx.notifier.send(env, &sent);
    }
    Ok(next)
}

/// Deletion: remove the app folder from git (when this Release wrote it), then let go.
async fn cleanup(rel: Arc<Release>, ctx: &Context) -> Result<Action, Error> {
    let facts = observe::deletion(ctx, &rel).await;
    match decide::deletion(&rel, facts) {
        Deletion::Retry(err) => Err(err),
        Deletion::LetGo(note) => {
            if let Some((reason, text)) = note {
                warn!(%reason, %text, "letting go without removing the app folder");
                publish(ctx, &*rel, event(reason, text, "Delete")).await;
            }
            ctx.forget(&key(&*rel));
            ctx.notifier.forget_release(&rel.uid().unwrap_or_default());
            Ok(Action::await_change())
        }
        Deletion::Remove {
            target,
            creds,
            change,
        } => {
            let outcome = ctx.writer.submit(target.repo, creds, *change).await?;
            info!(?outcome, "removed app folder");
            ctx.forget(&key(&*rel));
            ctx.notifier.forget_release(&rel.uid().unwrap_or_default());
            Ok(Action::await_change())
        }
    }
}
