//! Rollout health of what a Release applied, as Gimlet's agent shows it: its Deployments
//! (desired/updated/ready/available, ProgressDeadlineExceeded, the waiting reasons of their
//! pods) and, for Helm sources, the HelmRelease.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};

use crate::api::{Phase, Release, ReleaseStatus, WorkloadStatus};
use crate::flux::{self, FluxObject};

use super::Error;
use super::context::Context;
use super::release::Report;
use super::status::Summary;

const STUCK_REASONS: [&str; 5] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
];

/// `None` when everything the Release applied runs; otherwise the report to give.
pub async fn workload_health(
    ctx: &Context,
    rel: &Release,
    namespace: &str,
    st: &mut ReleaseStatus,
) -> Result<Option<Report>, Error> {
    let app = &rel.spec.app;
    if rel.spec.helm.is_some() {
        let api: Api<DynamicObject> = Api::namespaced_with(
            ctx.client.clone(),
            namespace,
            &flux::helm_release_resource(),
        );
        let Some(obj) = api.get_opt(app).await? else {
            st.phase = Phase::Applied;
            return Ok(Some(progressing(
                "WaitingForHelmRelease",
                format!(
                    "Flux applied the commit; HelmRelease {namespace}/{app} does not exist yet"
                ),
            )));
        };
        let hr = FluxObject::from_dynamic(&obj);
        let ready = hr.ready().cloned().unwrap_or_default();
        let current = hr.status.observed_generation.is_some()
            && hr.status.observed_generation == hr.generation;
        if current && ready.status == "False" {
            st.phase = Phase::Failed;
            return Ok(Some(Report {
                summary: Summary::Stalled {
                    reason: "HelmReleaseFailed",
                    message: format!(
                        "HelmRelease {namespace}/{app} failed ({}): {}",
                        ready.reason, ready.message
                    ),
                },
                requeue: Duration::from_secs(30),
            }));
        }
        if !(current && ready.status == "True") {
            st.phase = Phase::Applied;
            return Ok(Some(progressing(
                "WaitingForHelmRelease",
                format!("waiting for HelmRelease {namespace}/{app} to install this version"),
            )));
        }
    }

    let selector = format!("app.kubernetes.io/instance={app},app.kubernetes.io/managed-by=tumbler");
    let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let (mut workloads, mut stuck, mut rolling) = (vec![], vec![], vec![]);
    for d in deployments.items {
        let name = d.metadata.name.clone().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let status = d.status.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let mut w = WorkloadStatus {
            kind: "Deployment".into(),
            name: name.clone(),
            desired,
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            message: None,
        };
        let observed = status.observed_generation >= d.metadata.generation;
        let done = observed
            && w.updated == desired
            && w.ready == desired
            && w.available == desired
            && status.replicas.unwrap_or(0) == desired;
        if !done {
            let deadline = status.conditions.unwrap_or_default().into_iter().find(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            });
            let reasons = pod_reasons(ctx, namespace, &spec).await;
            let mut msg = format!(
                "{}/{desired} updated, {}/{desired} ready, {}/{desired} available",
                w.updated, w.ready, w.available
            );
            if let Some(c) = &deadline {
                msg = format!(
                    "ProgressDeadlineExceeded ({}); {msg}",
                    c.message.clone().unwrap_or_default()
                );
            }
            if !reasons.is_empty() {
                msg = format!(
                    "{msg}; {}",
                    reasons
                        .iter()
                        .map(|(_, r)| r.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
            w.message = Some(msg.clone());
            if deadline.is_some() || reasons.iter().any(|(stuck, _)| *stuck) {
                stuck.push(format!("Deployment {name}: {msg}"));
            } else {
                rolling.push(format!("Deployment {name}: {msg}"));
            }
        }
        workloads.push(w);
    }
    workloads.sort_by(|a, b| a.name.cmp(&b.name));
    st.workloads = workloads;
    if !stuck.is_empty() {
        st.phase = Phase::Failed;
        return Ok(Some(Report {
            summary: Summary::Stalled {
                reason: "RolloutStuck",
                message: stuck.join("; "),
            },
            requeue: Duration::from_secs(15),
        }));
    }
    if !rolling.is_empty() {
        st.phase = Phase::Applied;
        return Ok(Some(progressing("RollingOut", rolling.join("; "))));
    }
    Ok(None)
}

fn progressing(reason: &'static str, message: String) -> Report {
    Report {
        summary: Summary::Progressing { reason, message },
        requeue: Duration::from_secs(3),
    }
}

/// Why the Deployment's pods do not run: `(stuck, text)`, where stuck means the rollout will
/// not finish by itself (image pull or crash loop); unschedulable pods are only reported.
async fn pod_reasons(
    ctx: &Context,
    namespace: &str,
    spec: &k8s_openapi::api::apps::v1::DeploymentSpec,
) -> Vec<(bool, String)> {
    let Some(labels) = spec.selector.match_labels.as_ref() else {
        return vec![];
    };
    let sel = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let Ok(pods) = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default().labels(&sel))
        .await
    else {
        return vec![];
    };
    let mut reasons = vec![];
    for p in pods.items {
        let pod = p.metadata.name.clone().unwrap_or_default();
        for cs in p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
        {
            if let Some(r) = cs
                .state
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason)
                .filter(|r| STUCK_REASONS.contains(&r.as_str()))
            {
                reasons.push((true, format!("pod {pod} container {}: {r}", cs.name)));
            }
        }
        if let Some(c) = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
        {
            reasons.push((
                false,
                format!(
                    "pod {pod}: {}",
                    c.message.clone().unwrap_or_else(|| "unschedulable".into())
                ),
            ));
        }
    }
    reasons.sort();
    reasons.dedup();
    reasons
}
