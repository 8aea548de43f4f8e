//! Per-Release control, pure: reconcile requests (`reconcile.tumbler.dev/requestedAt` →
//! `status.lastHandledReconcileAt`) and expiry (`spec.expiry` → `status.expiresAt`, and
//! whether the Release is due for deletion). Suspension itself is decided in
//! [`super::plan`].

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ExpiryFrom, Release, ReleaseStatus, parse_duration};

use super::Requeue;

/// Records what this reconcile handled into the next status — the reconcile request (not
/// while suspended: a suspended Release handles none) and the expiry time — and shortens
/// `requeue` so that the Release is looked at again when it expires.
pub fn record(
    st: &mut ReleaseStatus,
    rel: &Release,
    suspended: bool,
    now: &Time,
    requeue: Requeue,
) -> Requeue {
    if !suspended && let Some(requested) = rel.reconcile_requested_at() {
        st.last_handled_reconcile_at = Some(requested.to_string());
    }
    let at = expires_at(rel, now.0);
    st.expires_at = at.map(|t| t.to_string());
    match (at, requeue) {
        (Some(at), Requeue::After(d)) if !suspended => {
            let left = at.duration_since(now.0).max(SignedDuration::ZERO);
            let left = Duration::try_from(left).unwrap_or_default() + Duration::from_secs(1);
            Requeue::After(d.min(left))
        }
        (_, requeue) => requeue,
    }
}

/// When the Release expires, from `spec.expiry`: its creation plus `after`, or with
/// `from: LastChange` the time Tumbler first saw its current generation plus `after`
/// (kept in `status.expiresAt` while the generation stays). `None` without an expiry.
pub fn expires_at(rel: &Release, now: Timestamp) -> Option<Timestamp> {
    let expiry = rel.spec.expiry.as_ref()?;
    let after = parse_duration(&expiry.after)?;
    let after = SignedDuration::try_from(after).ok()?;
    let old = rel.status.as_ref();
    let start = match expiry.from {
        ExpiryFrom::Creation => rel.metadata.creation_timestamp.as_ref()?.0,
        ExpiryFrom::LastChange => {
            let seen = old
                .filter(|s| s.observed_generation == rel.metadata.generation)
                .and_then(|s| s.expires_at.as_deref())
                .and_then(|t| t.parse::<Timestamp>().ok());
            if let Some(at) = seen {
                return Some(at);
            }
            now
        }
    };
    start.checked_add(after).ok()
}

/// The expiry time when it has passed and the Release is not suspended (a suspended
/// Release waits: deleting it would commit).
pub fn expired(rel: &Release, now: Timestamp) -> Option<Timestamp> {
    if rel.spec.suspend || rel.metadata.deletion_timestamp.is_some() {
        return None;
    }
    expires_at(rel, now).filter(|at| *at <= now)
}
