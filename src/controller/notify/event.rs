//! Which transitions a reconcile made, as the JSON documents receivers get. Pure: from the
//! Release (its old status), the status about to be written, the action of the commit this
//! reconcile made, and the time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde::Serialize;

use crate::api::{self, Phase, Release, ReleaseStatus, find_condition};

/// A transition of a Release that receivers are told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A new commit for the Release (action `release`).
    Committed,
    /// A new commit that promotes another Release's version (action `promote`).
    Promoted,
    /// A new commit that restores an earlier version (action `rollback`).
    RolledBack,
    /// `Ready` became True for the Release's commit.
    Ready,
    /// The phase became `Failed`.
    Failed,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Committed => "Committed",
            Transition::Promoted => "Promoted",
            Transition::RolledBack => "RolledBack",
            Transition::Ready => "Ready",
            Transition::Failed => "Failed",
        }
    }

    /// The transition of a new commit made with this `Tumbler-Action`.
    pub fn of_action(action: &str) -> Transition {
        match action {
            "promote" => Transition::Promoted,
            "rollback" => Transition::RolledBack,
            _ => Transition::Committed,
        }
    }

    fn severity(self) -> &'static str {
        match self {
            Transition::Failed => "error",
            _ => "info",
        }
    }
}

/// The object a notification is about, as Flux's events name it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// The failure a `Failed` notification reports: the Ready condition's reason and message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    pub reason: String,
    pub message: String,
}

/// One notification: the body of a `generic` / `generic-hmac` POST (documented in the
/// README, "Notifications": it is an API).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `Committed`, `Promoted`, `RolledBack`, `Ready` or `Failed`.
    pub reason: &'static str,
    /// `info`, or `error` for `Failed`.
    pub severity: &'static str,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// One sentence for people.
    pub message: String,
    pub reporting_controller: &'static str,
    pub involved_object: InvolvedObject,
    /// `<namespace>/<name>` of the Release.
    pub release: String,
    pub app: String,
    /// `<namespace>/<name>` of the Environment.
    pub environment: String,
    pub version: String,
    /// The full commit sha the transition is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The `Tumbler-Action` of the commit (`release`, `rollback`, `promote`), for the
    /// commit transitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The version a rollback left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
    /// `<namespace>/<name>@<version>` of the followed Release a promotion took its version
    /// from (the commit's `Tumbler-Promoted-From`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// Why, for `Failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Notification {
    /// The one-line text of a chat message (Slack's `text`).
    pub fn text(&self) -> String {
        let mark = match self.severity {
            "error" => ":x:",
            _ => ":white_check_mark:",
        };
        format!(
            "{mark} [{}] Release {}: {}",
            self.reason, self.release, self.message
        )
    }
}

fn ready_true(st: &ReleaseStatus) -> bool {
    find_condition(&st.conditions, api::READY).is_some_and(|c| c.status == "True")
}

/// What receivers were last told about a Release: the commit, and whether it was
/// last told Ready or Failed for that commit (`None`: neither yet). Statuses in between
/// (waiting for Flux, rolling out) tell nothing, so a Ready that Flux's next apply
/// interrupts for a moment is not told twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub commit: Option<String>,
    pub told: Option<Transition>,
}

impl Seen {
    /// From a status (when this process has told nothing about the Release yet).
    pub fn of(st: &ReleaseStatus) -> Seen {
        Seen {
            commit: st.commit.clone(),
            told: if ready_true(st) {
                Some(Transition::Ready)
            } else if st.phase == Phase::Failed {
                Some(Transition::Failed)
            } else {
                None
            },
        }
    }
}

/// The transitions from `old` (what receivers were last told, or what the Release's own
/// status says) to `new`, in the order they happened — a new commit first, then Ready or
/// Failed, each once per commit unless the other came in between — and what receivers
/// will then have been told. `action` is the `Tumbler-Action` of
/// the commit this reconcile submitted, if it submitted one; a new commit seen without it
/// (the status write after the push had failed) is a rollback when the Release still
/// carries `tumbler rollback`'s annotation, a release otherwise.
pub fn transitions(
    rel: &Release,
    old: &Seen,
    new: &ReleaseStatus,
    action: Option<&str>,
    now: &Time,
) -> (Vec<Notification>, Seen) {
    let rolled_back_from = rel.rolled_back_from();
    let mut out = vec![];
    let new_commit = new.commit.is_some() && new.commit != old.commit;
    let mut told = if new_commit || new.commit.is_none() {
        None
    } else {
        old.told
    };
    let base = |t: Transition, message: String| Notification {
        reason: t.as_str(),
        severity: t.severity(),
        timestamp: now.0.to_string(),
        message,
        reporting_controller: "tumbler",
        involved_object: InvolvedObject {
            api_version: format!("{}/{}", api::GROUP, api::VERSION),
            kind: "Release".into(),
            namespace: rel.namespace().unwrap_or_default(),
            name: rel.name_any(),
            uid: rel.uid().unwrap_or_default(),
        },
        release: format!("{}/{}", rel.namespace().unwrap_or_default(), rel.name_any()),
        app: rel.spec.app.clone(),
        environment: {
            let (ns, name) = rel.environment_key();
            format!("{ns}/{name}")
        },
        version: rel.spec.version.clone(),
        commit: new.commit.clone(),
        action: None,
        rolled_back_from: None,
        promoted_from: None,
        failure: None,
    };
    let short = new
        .commit
        .as_deref()
        .map(|c| c.chars().take(8).collect::<String>())
        .unwrap_or_default();
    if new_commit {
        let action = action.map(str::to_string).unwrap_or_else(|| {
            if rolled_back_from.is_some() {
                "rollback".into()
            } else if rel.promoted_from().is_some() {
                "promote".into()
            } else {
                "release".into()
            }
        });
        let t = Transition::of_action(&action);
        let what = match t {
            Transition::Promoted => "promoted",
            Transition::RolledBack => "rolled back",
            _ => "committed",
        };
        let mut n = base(
            t,
            format!(
                "{} {} {what} to {} ({short})",
                rel.spec.app, rel.spec.version, rel.spec.environment
            ),
        );
        if t == Transition::RolledBack {
            n.rolled_back_from = rolled_back_from.clone();
        }
        if t == Transition::Promoted {
            n.promoted_from = rel.promoted_from();
        }
        n.action = Some(action);
        out.push(n);
    }
    if ready_true(new) && told != Some(Transition::Ready) {
        told = Some(Transition::Ready);
        out.push(base(
            Transition::Ready,
            format!(
                "{} {} is ready in {} ({short})",
                rel.spec.app, rel.spec.version, rel.spec.environment
            ),
        ));
    }
    if new.phase == Phase::Failed && told != Some(Transition::Failed) {
        told = Some(Transition::Failed);
        let (reason, message) = find_condition(&new.conditions, api::READY)
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_default();
        let mut n = base(
            Transition::Failed,
            format!(
                "{} {} failed in {}: {reason}: {message}",
                rel.spec.app, rel.spec.version, rel.spec.environment
            ),
        );
        n.failure = Some(Failure { reason, message });
        out.push(n);
    }
    let seen = Seen {
        commit: new.commit.clone().or_else(|| old.commit.clone()),
        told,
    };
    (out, seen)
}
