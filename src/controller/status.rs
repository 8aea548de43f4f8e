//! What both reconcilers share: the finalizer wrapper, conditions that keep the kstatus
//! invariants, one server-side apply of the status subresource per reconcile, and an Event
//! on every transition of `Ready`.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::api::{self, Status, condition, find_condition, remove_condition, set_condition};

use super::context::Context;
use super::reason::Reason;
use super::{Error, FINALIZER, MANAGER};

/// The summary of a reconcile, turned into `Ready` / `Reconciling` / `Stalled`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Summary {
    /// Done: Ready=True.
    Ready { reason: Reason, message: String },
    /// Work in flight (waiting for Flux, retrying): Ready=False, Reconciling=True.
    Progressing { reason: Reason, message: String },
    /// Needs a person: Ready=False, Stalled=True.
    Stalled { reason: Reason, message: String },
    /// Nothing in flight and nothing to fix, but the outcome cannot be known (a Release whose
    /// Environment names no Flux object): Ready=False, neither Reconciling nor Stalled, so
    /// kstatus calls the object Current while `kubectl wait --for=condition=Ready` never
    /// succeeds on a guess.
    Unverified { reason: Reason, message: String },
}

impl Summary {
    pub fn message(&self) -> &str {
        match self {
            Summary::Ready { message, .. }
            | Summary::Progressing { message, .. }
            | Summary::Stalled { message, .. }
            | Summary::Unverified { message, .. } => message,
        }
    }

    pub fn reason(&self) -> Reason {
        match self {
            Summary::Ready { reason, .. }
            | Summary::Progressing { reason, .. }
            | Summary::Stalled { reason, .. }
            | Summary::Unverified { reason, .. } => *reason,
        }
    }

    /// The summary of an error: Stalled when it is terminal, Progressing otherwise.
    pub fn of_error(err: &Error) -> Summary {
        let (reason, message) = (err.reason(), err.to_string());
        if err.is_terminal() {
            Summary::Stalled { reason, message }
        } else {
            Summary::Progressing { reason, message }
        }
    }
}

/// Runs `apply` or `cleanup` under Tumbler's finalizer, inside a span naming the object.
pub async fn with_finalizer<K, A, AF, C, CF>(
    ctx: &Context,
    obj: Arc<K>,
    apply: A,
    cleanup: C,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    A: FnOnce(Arc<K>) -> AF,
    AF: Future<Output = Result<Action, Error>>,
    C: FnOnce(Arc<K>) -> CF,
    CF: Future<Output = Result<Action, Error>>,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            FinalizerEvent::Apply(o) => apply(o).await,
            FinalizerEvent::Cleanup(o) => cleanup(o).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// Writes a new status (one server-side apply, skipped when nothing changed) and publishes
/// the Event of a `Ready` transition.
pub async fn write_status<K, S>(
    ctx: &Context,
    obj: &K,
    old: &S,
    old_conditions: &[Condition],
    new: &S,
    new_conditions: &[Condition],
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if let Some(event) = transition_event(old_conditions, new_conditions, "Reconcile") {
        publish(ctx, obj, event).await;
    }
    if old == new {
        return Ok(());
    }
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": new,
    });
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Publishes an Event about an object; a failure is logged, never fatal. Normal Events draw
/// on the process's budget and are dropped (and counted) when it is spent: the conditions
/// carry the same news.
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, event: Event) {
    if event.type_ == EventType::Normal && !ctx.events.take() {
        ctx.metrics.events_dropped.inc();
        return;
    }
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, "could not publish event");
    }
}

/// An Event with this reason and note (Warning or Normal by the reason).
pub fn event(reason: Reason, note: String, action: &str) -> Event {
    Event {
        type_: if reason.is_warning() {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.as_str().to_string(),
        note: Some(truncate(&note, 1000)),
        action: action.to_string(),
        secondary: None,
    }
}

/// Sets Ready/Reconciling/Stalled from a summary, keeping the kstatus invariants.
pub fn summarise(
    conditions: &mut Vec<Condition>,
    summary: &Summary,
    generation: Option<i64>,
    now: &Time,
) {
    let (ready, reason, message) = match summary {
        Summary::Ready { reason, message } => (Status::True, reason.as_str(), message),
        // A workload cluster that does not answer: whether the Release runs is not known.
        Summary::Progressing {
            reason: Reason::ClusterUnreachable,
            message,
        } => (
            Status::Unknown,
            Reason::ClusterUnreachable.as_str(),
            message,
        ),
        Summary::Progressing { reason, message } => (Status::False, reason.as_str(), message),
        Summary::Stalled { reason, message } | Summary::Unverified { reason, message } => {
            (Status::False, reason.as_str(), message)
        }
    };
    set_condition(
        conditions,
        condition(api::READY, ready, reason, message.clone(), generation),
        now.clone(),
    );
    match summary {
        Summary::Ready { .. } | Summary::Unverified { .. } => {
            remove_condition(conditions, api::RECONCILING);
            remove_condition(conditions, api::STALLED);
        }
        Summary::Progressing { .. } => {
            remove_condition(conditions, api::STALLED);
            set_condition(
                conditions,
                condition(
                    api::RECONCILING,
                    Status::True,
                    reason,
                    message.clone(),
                    generation,
                ),
                now.clone(),
            );
        }
        Summary::Stalled { .. } => {
            remove_condition(conditions, api::RECONCILING);
            set_condition(
                conditions,
                condition(
                    api::STALLED,
                    Status::True,
                    reason,
                    message.clone(),
                    generation,
                ),
                now.clone(),
            );
        }
    }
    debug_assert_eq!(api::kstatus_violation(conditions), None);
}

/// The Event that tells a person about a change of the Ready condition, if it changed.
pub fn transition_event(old: &[Condition], new: &[Condition], action: &str) -> Option<Event> {
    let new_ready = find_condition(new, api::READY)?;
    let old_ready = find_condition(old, api::READY);
    if old_ready.is_some_and(|o| {
        o.status == new_ready.status
            && o.reason == new_ready.reason
            && o.message == new_ready.message
    }) {
        return None;
    }
    let warning = find_condition(new, api::STALLED).is_some_and(|c| c.status == "True");
    Some(Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: new_ready.reason.clone(),
        note: Some(truncate(&new_ready.message, 1000)),
        action: action.to_string(),
        secondary: None,
    })
}

/// Cuts a message to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// `namespace/name` of an object, for logs and trailers.
pub fn key<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}
