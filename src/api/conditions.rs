//! Condition helpers shared by both kinds, following the Kubernetes API conventions and
//! kstatus: `lastTransitionTime` changes only when `status` changes, `observedGeneration` is
//! stamped on every condition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The summary condition: always present on a reconciled object.
pub const READY: &str = "Ready";
/// Work is in flight (kstatus).
pub const RECONCILING: &str = "Reconciling";
/// Work is stuck and needs a person (kstatus).
pub const STALLED: &str = "Stalled";
/// The Release rendered without error.
pub const RENDERED: &str = "Rendered";
/// The Release's files are in a pushed commit.
pub const COMMITTED: &str = "Committed";
/// Flux applied a revision containing the Release's commit.
pub const APPLIED: &str = "Applied";
/// The app folder in git differs from what the Release renders.
pub const DRIFTED: &str = "Drifted";

/// `"True"`, `"False"` or `"Unknown"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(b: bool) -> Self {
        if b { Status::True } else { Status::False }
    }
}

/// Objects that carry conditions in their status.
pub trait Conditioned {
    fn conditions(&self) -> &[Condition];

    /// The condition of this type, if present.
    fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(self.conditions(), type_)
    }

    /// Whether the condition of this type is `True`.
    fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }
}

/// The condition of this type in a list, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Builds a condition; `lastTransitionTime` is filled in by [`set_condition`].
pub fn condition(
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.as_str().to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
    }
}

/// Sets `new` in `conditions`, replacing a condition of the same type. The transition time
/// is `now` when the status changed (or the condition is new) and is kept otherwise, so a
/// re-reconcile that only refreshes the message does not look like a transition. Returns
/// whether anything changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: Time) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            new.last_transition_time = if old.status == new.status {
                old.last_transition_time.clone()
            } else {
                now
            };
            if *old == new {
                return false;
            }
            *old = new;
            true
        }
        None => {
            new.last_transition_time = now;
            conditions.push(new);
            true
        }
    }
}

/// Removes the condition of this type; returns whether it was there.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// Checks the kstatus invariants on a set of conditions; returns the first one broken.
/// `Ready` is present; `Reconciling` and `Stalled` are never both `True`; `Stalled=True`
/// implies `Ready=False`.
pub fn kstatus_violation(conditions: &[Condition]) -> Option<&'static str> {
    let is = |t: &str, s: &str| find_condition(conditions, t).is_some_and(|c| c.status == s);
    if find_condition(conditions, READY).is_none() {
        return Some("Ready condition missing");
    }
    if is(RECONCILING, "True") && is(STALLED, "True") {
        return Some("Reconciling and Stalled both True");
    }
    if is(STALLED, "True") && !is(READY, "False") {
        return Some("Stalled=True without Ready=False");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn new_condition_gets_now_as_transition_time() {
        let mut cs = vec![];
        assert!(set_condition(
            &mut cs,
            condition(READY, Status::False, "Pending", "", Some(1)),
            at(10)
        ));
        assert_eq!(cs[0].last_transition_time, at(10));
    }

    #[test]
    fn same_status_keeps_transition_time_but_updates_message_and_generation() {
        let mut cs = vec![];
        set_condition(
            &mut cs,
            condition(READY, Status::False, "Pending", "a", Some(1)),
            at(10),
        );
        assert!(set_condition(
            &mut cs,
            condition(READY, Status::False, "Pending", "b", Some(2)),
            at(20)
        ));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].last_transition_time, at(10));
        assert_eq!(cs[0].message, "b");
        assert_eq!(cs[0].observed_generation, Some(2));
    }

    #[test]
    fn status_change_moves_transition_time() {
        let mut cs = vec![];
        set_condition(
            &mut cs,
            condition(READY, Status::False, "Pending", "", Some(1)),
            at(10),
        );
        set_condition(
            &mut cs,
            condition(READY, Status::True, "Applied", "", Some(1)),
            at(30),
        );
        assert_eq!(cs[0].last_transition_time, at(30));
        assert_eq!(cs[0].status, "True");
    }

    #[test]
    fn identical_condition_reports_no_change() {
        let mut cs = vec![];
        set_condition(
            &mut cs,
            condition(READY, Status::True, "Applied", "ok", Some(1)),
            at(10),
        );
        assert!(!set_condition(
            &mut cs,
            condition(READY, Status::True, "Applied", "ok", Some(1)),
            at(99)
        ));
    }

    #[test]
    fn kstatus_invariants_are_checked() {
        let mut cs = vec![];
        assert_eq!(kstatus_violation(&cs), Some("Ready condition missing"));
        set_condition(
            &mut cs,
            condition(READY, Status::True, "R", "", None),
            at(1),
        );
        assert_eq!(kstatus_violation(&cs), None);
        set_condition(
            &mut cs,
            condition(STALLED, Status::True, "S", "", None),
            at(1),
        );
        assert_eq!(
            kstatus_violation(&cs),
            Some("Stalled=True without Ready=False")
        );
        set_condition(
            &mut cs,
            condition(RECONCILING, Status::True, "S", "", None),
            at(1),
        );
        assert_eq!(
            kstatus_violation(&cs),
            Some("Reconciling and Stalled both True")
        );
        remove_condition(&mut cs, RECONCILING);
        set_condition(
            &mut cs,
            condition(READY, Status::False, "S", "", None),
            at(1),
        );
        assert_eq!(kstatus_violation(&cs), None);
    }
}
