//! Promotion, the I/O around [`decide::promotion`]: read the upstream of a follower (from
//! the Release cache, else the API server), decide, and patch the follower's spec with
//! the upstream's version and artifact. The commit is then made by the normal release
//! path, which sees the `promoted-from` annotation and writes `Tumbler-Action: promote`.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use tracing::{info, warn};

use crate::api::{self, Environment, FromNamespaces, PROMOTED, PROMOTION_MANAGER, Release};

use super::super::context::Context;
use super::super::reason::Reason;
use super::super::status::{event, publish};
use super::decide::promotion::{self, Promotion, PromotionFacts, Upstream};
use super::decide::{Decision, Requeue};

/// Looks at the upstream of a follower and promotes when it is time; `None` for a Release
/// that follows nothing (or is being deleted).
pub async fn run(ctx: &Context, rel: &Release, env: Option<&Environment>) -> Option<Promotion> {
    let follow = rel.spec.follow.as_ref()?;
    // A suspended follower takes nothing: its spec stays as the person left it until resume.
    if rel.metadata.deletion_timestamp.is_some() || rel.spec.suspend {
        return None;
    }
    let own = rel.namespace().unwrap_or_default();
    let (ns, name) = follow.upstream_key(&own);
    let upstream = match ctx.releases.get(&ObjectRef::new(&name).within(&ns)) {
        Some(up) => Upstream::Found(Box::new((*up).clone())),
        // Not in this controller's cache (another namespace or shard): ask.
        None => match ctx.releases_api(&ns).get_opt(&name).await {
            Ok(Some(up)) => Upstream::Found(Box::new(up)),
            Ok(None) => Upstream::NotFound,
            Err(e) => Upstream::Unreadable(e.to_string()),
        },
    };
    let needs_labels = ns != own
        && env.is_some_and(|e| {
            e.namespace().as_deref() != Some(ns.as_str())
                && e.spec.releases.namespaces.from == FromNamespaces::Selector
        });
    let labels = if needs_labels {
        super::observe::labels_of_namespace(ctx, &ns)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let facts = PromotionFacts {
        follower: rel,
        follow,
        env,
        upstream_labels: labels.as_ref(),
        upstream,
        now: jiff::Timestamp::now(),
    };
    let mut decided = promotion::decide(&facts);
    if let Some(p) = &decided.promote {
        let body = promotion::patch(p, rel.metadata.resource_version.as_deref(), false);
        let params = PatchParams {
            field_manager: Some(PROMOTION_MANAGER.into()),
            ..PatchParams::default()
        };
        match ctx
            .releases_api(&own)
            .patch(&rel.name_any(), &params, &Patch::Merge(&body))
            .await
        {
            Ok(_) => {
                info!(version = %p.version, from = %p.from, "promoted");
                let note = format!("promoted version {} from {}", p.version, p.from);
                publish(ctx, rel, event(Reason::Promoted, note, "Promote")).await;
            }
            Err(e) => {
                // A conflict (the Release changed meanwhile) or an API error: look again soon.
                warn!(error = %e, "could not promote");
                decided.condition.2 = format!("promoting version {} failed: {e}", p.version);
                decided.wake_in = Some(Duration::from_secs(5));
            }
        }
    }
    Some(decided)
}

/// Puts a promotion's condition and status into the decided status (or removes them from a
/// Release that follows nothing any more), and looks again at the end of a soak.
pub fn apply_to(decision: &mut Decision, promotion: Option<Promotion>, rel: &Release) {
    let st = &mut decision.status;
    if rel.spec.suspend && rel.spec.follow.is_some() {
        // Suspended: the last word on promotion stands until resume.
        return;
    }
    let Some(p) = promotion else {
        api::remove_condition(&mut st.conditions, PROMOTED);
        st.promotion = None;
        return;
    };
    let (status, reason, message) = p.condition;
    api::set_condition(
        &mut st.conditions,
        api::condition(
            PROMOTED,
            status,
            reason.as_str(),
            message,
            rel.metadata.generation,
        ),
        super::super::status::now(),
    );
    st.promotion = Some(p.status);
    if let (Requeue::After(d), Some(wake)) = (decision.requeue, p.wake_in) {
        // A second after the soak ends, so that it has ended.
        decision.requeue = Requeue::After(d.min(wake + Duration::from_secs(1)));
    }
}
