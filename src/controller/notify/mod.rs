//! Notifications of Release transitions to the receivers an Environment names
//! (`spec.notifications.receivers`): which transitions a reconcile made ([`event`], pure),
//! their delivery off the reconcile path ([`deliver`]), and the Environment's
//! `NotificationsDelivered` condition.

pub mod deliver;
pub mod event;
#[cfg(test)]
mod tests;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    Environment, EnvironmentStatus, Status, condition, remove_condition, set_condition,
};

use super::reason::Reason;

pub use deliver::{Notifier, Options};
pub use event::{Notification, Seen, Transition, transitions};

/// The condition type on Environments with receivers.
pub const NOTIFICATIONS_DELIVERED: &str = "NotificationsDelivered";

/// `NotificationsDelivered`: False (`DeliveryFailed`) naming each receiver whose last
/// delivery failed and why, True (`Delivered`) otherwise; absent without receivers.
/// `health`: each receiver with its last failure, as [`Notifier::health`] gives it.
pub fn delivered_condition(
    st: &mut EnvironmentStatus,
    env: &Environment,
    health: &[(String, Option<String>)],
    now: &Time,
) {
    if health.is_empty() {
        remove_condition(&mut st.conditions, NOTIFICATIONS_DELIVERED);
        return;
    }
    let failing: Vec<String> = health
        .iter()
        .filter_map(|(name, failure)| failure.as_ref().map(|f| format!("receiver {name}: {f}")))
        .collect();
    let c = if failing.is_empty() {
        condition(
            NOTIFICATIONS_DELIVERED,
            Status::True,
            Reason::Delivered.as_str(),
            "no delivery failed since each receiver's last success",
            env.metadata.generation,
        )
    } else {
        condition(
            NOTIFICATIONS_DELIVERED,
            Status::False,
            Reason::DeliveryFailed.as_str(),
            failing.join("; "),
            env.metadata.generation,
        )
    };
    set_condition(&mut st.conditions, c, now.clone());
}

/// The names of an Environment's receivers.
pub fn receiver_names(env: &Environment) -> Vec<String> {
    env.spec
        .notifications
        .iter()
        .flat_map(|n| n.receivers.iter().map(|r| r.name.clone()))
        .collect()
}
