//! decide, as a table: observed situation → plan → status, with the kstatus invariants
//! checked on every status. No cluster, no git. Fixtures here; the tables in `plan`,
//! `status` and `deletion`.

mod control;
mod deletion;
mod plan;
mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::decide::*;
use super::observe::Deleting;
use crate::api::{self, Environment, Phase, Release, ReleaseStatus};
use crate::controller::Error;
use crate::controller::reason::Reason;
use crate::controller::status::Summary;
use crate::credentials::CredentialsError;
use crate::flux::FluxCondition;
use crate::gitops::{ChangeKind, Credentials, GitError};
use crate::render::{self, RenderError};

pub(super) fn at(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).unwrap())
}

pub(super) fn release(name: &str, generation: i64) -> Release {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name, "namespace": "team", "generation": generation, "uid": format!("uid-{name}")},
        "spec": {"environment": "staging", "app": "api", "version": "1.2.3",
            "template": {"image": {"repository": "ghcr.io/acme/api", "tag": "1.2.3"}}},
    }))
    .unwrap()
}

pub(super) fn environment(extra: serde_json::Value) -> Environment {
    let mut doc = serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "staging", "namespace": "team", "uid": "env-uid"},
        "spec": {"repository": {"url": "https://git.example/gitops.git", "branch": "main", "path": "envs/staging"},
            "targetNamespace": "api"},
    });
    if let (Some(spec), Some(extra)) = (doc["spec"].as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(doc).unwrap()
}

pub(super) fn flux_env() -> Environment {
    environment(
        serde_json::json!({"flux": {"kustomizations": [{"name": "apps", "namespace": "flux-system"}]}}),
    )
}

pub(super) fn observed(
    rel: &Release,
    env: Environment,
    folder: Option<Option<BTreeMap<String, Vec<u8>>>>,
) -> Observed {
    let rendered = render::render(rel, &env).map_err(Error::from);
    Observed {
        env: Ok(env),
        overlaps: None,
        namespace_labels: None,
        claimants: vec![format!("team/{}", rel.metadata.name.clone().unwrap())],
        rendered: Some(rendered),
        git: Some(Ok(GitFacts {
            creds: Credentials::None,
            folder,
        })),
    }
}

/// A folder whose `.tumbler/release.yaml` names `owner` (`namespace/name`).
pub(super) fn folder_of(owner: &str) -> Option<Option<BTreeMap<String, Vec<u8>>>> {
    let (ns, name) = owner.split_once('/').unwrap();
    Some(Some(BTreeMap::from([(
        ".tumbler/release.yaml".to_string(),
        format!("metadata:\n  name: {name}\n  namespace: {ns}\n").into_bytes(),
    )])))
}

/// The status decided when the plan stops (or fails) before git.
pub(super) fn stopped_status(rel: &Release, obs: &Observed) -> Decision {
    let plan = plan(rel, obs);
    let Plan::Stop(stopped) = plan else {
        panic!("expected a stop, got {plan:?}");
    };
    let d = status(&Facts {
        release: rel,
        now: at(1000),
        rendered: obs.rendered.as_ref(),
        progress: Progress::Stopped(stopped),
    });
    check(rel, &d);
    d
}

/// kstatus invariants, observedGeneration and the message, on every decided status.
pub(super) fn check(rel: &Release, d: &Decision) {
    assert_eq!(api::kstatus_violation(&d.status.conditions), None, "{d:?}");
    assert_eq!(d.status.observed_generation, rel.metadata.generation);
    for c in &d.status.conditions {
        assert_eq!(c.observed_generation, rel.metadata.generation, "{c:?}");
    }
    let ready = api::find_condition(&d.status.conditions, api::READY).unwrap();
    assert_eq!(ready.reason, d.summary.reason().as_str());
    assert_eq!(d.status.message.as_deref(), Some(d.summary.message()));
    match d.summary {
        Summary::Ready { .. } => assert_eq!(ready.status, "True"),
        // Nothing is known of a workload cluster that does not answer.
        Summary::Progressing {
            reason: Reason::ClusterUnreachable,
            ..
        } => assert_eq!(ready.status, "Unknown"),
        _ => assert_eq!(ready.status, "False"),
    }
}

pub(super) fn cond<'a>(
    d: &'a Decision,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    api::find_condition(&d.status.conditions, type_)
}

pub(super) fn is_stalled(d: &Decision) -> bool {
    cond(d, api::STALLED).is_some_and(|c| c.status == "True")
}

pub(super) fn kube_error(code: u16) -> Error {
    Error::Kube(kube::Error::Api(Box::new(kube::core::Status {
        code,
        message: "etcdserver: request timed out".into(),
        ..Default::default()
    })))
}

/// A Release whose generation 1 is in git at the current target.
pub(super) fn written_release(env: &Environment) -> Release {
    let mut rel = release("api", 1);
    let digest = render::render(&rel, env).unwrap().digest;
    let mut conditions = vec![];
    api::set_condition(
        &mut conditions,
        api::condition(
            api::COMMITTED,
            api::Status::True,
            "Pushed",
            "commit",
            Some(1),
        ),
        at(1),
    );
    rel.status = Some(ReleaseStatus {
        phase: Phase::Ready,
        observed_generation: Some(1),
        commit: Some("c0ffee".repeat(6) + "c0ff"),
        rendered_digest: Some(digest),
        target: Some(Target::of(env).describe()),
        conditions,
        ..Default::default()
    });
    rel
}

pub(super) fn ready(status: &str, reason: &str) -> Option<FluxCondition> {
    Some(FluxCondition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message: format!("flux says {reason}"),
        observed_generation: None,
    })
}

pub(super) fn ks(state: KustomizationState) -> Cluster {
    Cluster {
        kustomizations: vec![Kustomization {
            name: "flux-system/apps".into(),
            state,
        }],
        ..Default::default()
    }
}

pub(super) fn found(status: &str, applied: bool, attempted: bool) -> KustomizationState {
    KustomizationState::Found {
        suspended: false,
        ready: ready(
            status,
            if status == "True" {
                "ReconciliationSucceeded"
            } else {
                "HealthCheckFailed"
            },
        ),
        applied,
        attempted,
    }
}

pub(super) fn deployment(desired: i32, ready: i32, pods: Vec<(bool, String)>) -> Deployment {
    Deployment {
        name: "api".into(),
        desired,
        replicas: desired,
        updated: desired,
        ready,
        available: ready,
        observed: true,
        deadline_exceeded: None,
        pods,
    }
}

/// The status decided at `now` once `rel`'s rendered state is in git at `commit` (`pushed`
/// by this reconcile, or already there), with this cluster; checked against the invariants.
pub(super) fn decided_in_git(
    rel: &Release,
    env: &Environment,
    commit: String,
    pushed: bool,
    now: Time,
    cluster: Result<Cluster, Error>,
) -> Decision {
    let obs = observed(rel, env.clone(), Some(None));
    let Plan::Submit {
        env, rendered, git, ..
    } = plan(rel, &obs)
    else {
        panic!("expected a submit");
    };
    let written = Written {
        env,
        rendered,
        creds: &git.creds,
        target: Target::of(env),
        commit,
        pushed,
        drift: None,
    };
    let d = status(&Facts {
        release: rel,
        now,
        rendered: obs.rendered.as_ref(),
        progress: Progress::InGit(written, Box::new(cluster)),
    });
    check(rel, &d);
    d
}

/// The status decided after a push, with this cluster.
pub(super) fn after_push(
    env: &Environment,
    cluster: Result<Cluster, Error>,
) -> (Release, Decision) {
    let rel = release("api", 1);
    let d = decided_in_git(&rel, env, "12345678".repeat(5), true, at(3000), cluster);
    assert_eq!(
        d.status.commit.as_deref(),
        Some("12345678".repeat(5).as_str())
    );
    assert_eq!(cond(&d, api::COMMITTED).unwrap().reason, "Pushed");
    (rel, d)
}

pub(super) fn deleting(
    env: Result<Option<Environment>, Error>,
    git: Option<Result<(Credentials, Option<String>), Error>>,
) -> Deleting {
    Deleting { env, git }
}
