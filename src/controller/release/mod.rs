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
    // A rollback request changes the spec first; the next reconcile commits it.
    if rel.rollback_request().is_some() {
        return rollback::resolve(ctx, &rel).await;
    }
    let observed = observe::release(ctx, &rel).await;
    let progress = match act::write(ctx, decide::plan(&rel, &observed)).await {
        Ok(written) => {
            if written.pushed && ctx.config.nudge_flux {
                act::nudge_flux(ctx, written.env, &rel).await;
            }
            let cluster = observe::cluster(ctx, &rel, &written).await;
            Progress::InGit(written, Box::new(cluster))
        }
        Err(stopped) => Progress::Stopped(stopped),
    };
    let decision = decide::status(&Facts {
        release: &rel,
        now: now(),
        rendered: observed.rendered.as_ref(),
        progress,
    });
    act::finish(ctx, &rel, decision, timer).await
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
            Ok(Action::await_change())
        }
    }
}
