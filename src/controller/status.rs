//! Building and writing status: conditions that keep the kstatus invariants, server-side
//! apply of the status subresource, and an Event on every transition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::api::{self, Status, condition, find_condition, remove_condition, set_condition};

/// The summary of a reconcile, turned into `Ready` / `Reconciling` / `Stalled`.
pub enum Summary<'a> {
    /// Done: Ready=True.
    Ready { reason: &'a str, message: String },
    /// Work in flight (waiting for Flux, retrying): Ready=False, Reconciling=True.
    Progressing { reason: &'a str, message: String },
    /// Needs a person: Ready=False, Stalled=True.
    Stalled { reason: &'a str, message: String },
}

impl Summary<'_> {
    pub fn message(&self) -> &str {
        match self {
            Summary::Ready { message, .. }
            | Summary::Progressing { message, .. }
            | Summary::Stalled { message, .. } => message,
        }
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
        Summary::Ready { reason, message } => (Status::True, *reason, message),
        Summary::Progressing { reason, message } => (Status::False, *reason, message),
        Summary::Stalled { reason, message } => (Status::False, *reason, message),
    };
    set_condition(
        conditions,
        condition(api::READY, ready, reason, message.clone(), generation),
        now.clone(),
    );
    match summary {
        Summary::Ready { .. } => {
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
    let warning = find_condition(new, api::STALLED).is_some_and(|c| c.status == "True")
        || new_ready.reason == "Failed";
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

/// `apiVersion`/`kind` of a resource, for server-side apply bodies.
pub fn type_meta<K: Resource<DynamicType = ()>>() -> (String, String) {
    (K::api_version(&()).to_string(), K::kind(&()).to_string())
}

/// `namespace/name` of an object, for logs and trailers.
pub fn key<K: ResourceExt>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}
