//! The complete next status of a Release, from the facts: phase, conditions, commit,
//! workloads, history — computed once.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    self, HistoryEntry, Phase, Release, ReleaseStatus, Status, WorkloadStatus, condition,
    set_condition,
};
use crate::flux;
use crate::render::Rendered;

use super::super::super::Error;
use super::super::super::context::RESYNC;
use super::super::super::reason::Reason;
use super::super::super::status::{Summary, summarise, truncate};
use super::{
    Cluster, Decision, HelmRelease, KustomizationState, Progress, Requeue, Stopped, Written,
    control,
};

/// Everything the status is decided from.
pub struct Facts<'a> {
    pub release: &'a Release,
    pub now: Time,
    /// The render result, when there was an Environment to render for.
    pub rendered: Option<&'a Result<Rendered, Error>>,
    pub progress: Progress<'a>,
}

/// Phase, summary and when to look again.
type Verdict = (Phase, Summary, Requeue);

/// The complete next status of a Release.
pub fn status(facts: &Facts<'_>) -> Decision {
    let rel = facts.release;
    let generation = rel.metadata.generation;
    let old = rel.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.observed_generation = generation;
    rendered_condition(&mut st, facts.rendered, generation, &facts.now);
    let mut note = None;
    let (phase, summary, requeue) = match &facts.progress {
        Progress::Stopped(stopped) => before_git(stopped, &old, generation),
        Progress::InGit(w, cluster) => {
            note = repointed(rel, &old, w);
            record_commit(&mut st, w, generation, &facts.now);
            match cluster.as_ref() {
                Ok(cluster) => judge_cluster(&mut st, rel, w, cluster, &facts.now),
                Err(e) => cluster_unknown(&old, w, e),
            }
        }
    };
    st.phase = phase;
    let suspended = matches!(
        facts.progress,
        Progress::Stopped(Stopped::ReleaseSuspended { .. })
    );
    let requeue = control::record(&mut st, rel, suspended, &facts.now, requeue);
    summarise(&mut st.conditions, &summary, generation, &facts.now);
    st.message = Some(truncate(summary.message(), 500));
    Decision {
        status: st,
        summary,
        requeue,
        note,
    }
}

/// `Rendered`: True with what was rendered, or False with the render error's reason.
fn rendered_condition(
    st: &mut ReleaseStatus,
    rendered: Option<&Result<Rendered, Error>>,
    generation: Option<i64>,
    now: &Time,
) {
    let c = match rendered {
        Some(Ok(r)) => condition(
            api::RENDERED,
            Status::True,
            Reason::Rendered.as_str(),
            format!("{} files in {}, {}", r.files.len(), r.app_dir, r.digest),
            generation,
        ),
        Some(Err(e)) => condition(
            api::RENDERED,
            Status::False,
            e.reason().as_str(),
            e.to_string(),
            generation,
        ),
        None => return,
    };
    set_condition(&mut st.conditions, c, now.clone());
}

/// Nothing of this generation is in git: why. The phase says where the last generation got,
/// unless the Release changed since (then Pending), or a person must act (Failed).
fn before_git(stopped: &Stopped<'_>, old: &ReleaseStatus, generation: Option<i64>) -> Verdict {
    let phase = |terminal: bool| {
        if terminal {
            Phase::Failed
        } else if old.observed_generation == generation {
            old.phase
        } else {
            Phase::Pending
        }
    };
    match stopped {
        Stopped::Suspended { environment } => (
            phase(false),
            Summary::Progressing {
                reason: Reason::EnvironmentSuspended,
                message: format!(
                    "Environment {environment} is suspended; the Release is committed once it resumes"
                ),
            },
            Requeue::After(Duration::from_secs(60)),
        ),
        Stopped::ReleaseSuspended { pending } => (
            if *pending { Phase::Pending } else { old.phase },
            Summary::Progressing {
                reason: Reason::Suspended,
                message: if *pending {
                    "the Release is suspended (spec.suspend): its change is not committed until it is resumed".into()
                } else {
                    "the Release is suspended (spec.suspend): nothing is committed for it until it is resumed".into()
                },
            },
            // A change of the Release (resuming it) starts a reconcile by itself; the
            // resync only looks again.
            Requeue::After(RESYNC),
        ),
        Stopped::Failed(fault) => {
            let err = fault.error();
            (
                phase(err.is_terminal()),
                Summary::of_error(err),
                Requeue::Backoff,
            )
        }
    }
}

/// The Event to give when this write went to a new repository, branch or folder.
fn repointed(rel: &Release, old: &ReleaseStatus, w: &Written<'_>) -> Option<(Reason, String)> {
    let target = w.target.describe();
    let before = old.target.as_ref().filter(|t| **t != target)?;
    let outcome = if super::moved_from(rel, &w.target).is_some() {
        "the old folder is removed"
    } else {
        "the old folder stays in the other repository or branch: remove it by hand"
    };
    w.pushed.then(|| {
        (
            Reason::Repointed,
            format!("written to {target} (the Environment moved from {before}); {outcome}"),
        )
    })
}

/// The commit is in git, but what the cluster did with it could not be read. A workload
/// cluster that cannot be read (`spec.cluster`: unreachable, no usable kubeconfig) leaves
/// the Release Committed: its last phase, Ready or Failed, would be stale news.
fn cluster_unknown(old: &ReleaseStatus, w: &Written<'_>, e: &Error) -> Verdict {
    let phase =
        if old.commit.as_deref() == Some(w.commit.as_str()) && !matches!(e, Error::Remote(_)) {
            old.phase
        } else {
            Phase::Committed
        };
    let message = format!(
        "committed {}; cannot read what the cluster did: {e}",
        short(&w.commit)
    );
    // A missing or unusable kubeconfig needs a person.
    let summary = if matches!(e, Error::Remote(r) if r.is_terminal()) {
        Summary::Stalled {
            reason: e.reason(),
            message,
        }
    } else {
        Summary::Progressing {
            reason: e.reason(),
            message,
        }
    };
    (phase, summary, Requeue::Backoff)
}

/// Records the commit, target and digest, and the `Committed`/`Drifted` conditions.
fn record_commit(st: &mut ReleaseStatus, w: &Written<'_>, generation: Option<i64>, now: &Time) {
    st.revision = Some(flux::revision(&w.target.repo.branch, &w.commit));
    st.commit_short = Some(w.commit.chars().take(8).collect());
    st.commit = Some(w.commit.clone());
    st.rendered_digest = Some(w.rendered.digest.clone());
    st.target = Some(w.target.describe());
    let c = match &w.drift {
        None => {
            // What was just written (or found unchanged) is what the Release renders: in sync.
            // Set here, in the same write as the commit, so that the next reconcile's
            // comparison finds nothing new to write.
            set_condition(
                &mut st.conditions,
                condition(
                    api::DRIFTED,
                    Status::False,
                    Reason::InSync.as_str(),
                    "the app folder in git is what the Release renders",
                    generation,
                ),
                now.clone(),
            );
            let reason = if w.pushed {
                Reason::Pushed
            } else {
                Reason::UpToDate
            };
            condition(
                api::COMMITTED,
                Status::True,
                reason.as_str(),
                format!(
                    "commit {} on {}",
                    &w.commit[..w.commit.len().min(12)],
                    w.target.repo.branch
                ),
                generation,
            )
        }
        Some(changed) if changed.is_empty() => condition(
            api::DRIFTED,
            Status::False,
            Reason::InSync.as_str(),
            "the app folder in git is what the Release renders",
            generation,
        ),
        Some(changed) => condition(
            api::DRIFTED,
            Status::True,
            Reason::ChangedOutsideTumbler.as_str(),
            format!(
                "{} changed in git outside Tumbler: {}; the next change to the Release writes its rendered state again",
                w.rendered.app_dir,
                changed.join(", ")
            ),
            generation,
        ),
    };
    set_condition(&mut st.conditions, c, now.clone());
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(8)]
}

/// Phase, summary and requeue from what Flux and the workloads did with the commit.
fn judge_cluster(
    st: &mut ReleaseStatus,
    rel: &Release,
    w: &Written<'_>,
    cluster: &Cluster,
    now: &Time,
) -> Verdict {
    let limit = w.env.spec.history_limit.unwrap_or(10) as usize;
    if cluster.kustomizations.is_empty() {
        // Nothing applies the commit that Tumbler can see: Ready stays False (never a guess),
        // with nothing in flight either; `Committed=True` says the commit is there.
        record_history(st, rel, &w.commit, now, limit);
        return (
            Phase::Committed,
            Summary::Unverified {
                reason: Reason::NotVerified,
                message: format!(
                    "committed {}; not verified that it is applied: Environment {} names no Flux Kustomization (spec.flux.kustomizations) to wait for; wait for condition Committed instead",
                    short(&w.commit),
                    w.env.metadata.name.as_deref().unwrap_or_default()
                ),
            },
            Requeue::After(RESYNC),
        );
    }
    if let Some(verdict) = judge_flux(st, w, cluster, rel.metadata.generation, now) {
        return verdict;
    }
    st.last_applied_version = Some(rel.spec.version.clone());
    set_condition(
        &mut st.conditions,
        condition(
            api::APPLIED,
            Status::True,
            Reason::Applied.as_str(),
            format!(
                "Flux applied {}",
                flux::revision(&w.target.repo.branch, &w.commit)
            ),
            rel.metadata.generation,
        ),
        now.clone(),
    );
    if let Some(verdict) = judge_helm(cluster.helm.as_ref()) {
        return pace(st, verdict, now);
    }
    if let Some(verdict) = judge_deployments(st, cluster) {
        return pace(st, verdict, now);
    }
    record_history(st, rel, &w.commit, now, limit);
    (
        Phase::Ready,
        Summary::Ready {
            reason: Reason::Applied,
            message: format!("version {} applied by Flux", rel.spec.version),
        },
        Requeue::After(RESYNC),
    )
}

/// `None` when every Kustomization applied the commit; otherwise waiting or failed.
fn judge_flux(
    st: &mut ReleaseStatus,
    w: &Written<'_>,
    cluster: &Cluster,
    generation: Option<i64>,
    now: &Time,
) -> Option<Verdict> {
    for ks in &cluster.kustomizations {
        let name = &ks.name;
        let (ready, applied, attempted) = match &ks.state {
            KustomizationState::Found {
                suspended: false,
                ready,
                applied,
                attempted,
            } => (ready.clone().unwrap_or_default(), *applied, *attempted),
            other => return waiting(not_running(name, other)),
        };
        if ready.status == "True" && applied {
            continue;
        }
        if ready.status != "False" || !attempted {
            return waiting((
                Reason::WaitingForFlux,
                format!(
                    "committed {}; waiting for Flux Kustomization {name} to apply it",
                    short(&w.commit)
                ),
            ));
        }
        // Flux's own reason (BuildFailed, HealthCheckFailed…) is the Applied condition's.
        set_condition(
            &mut st.conditions,
            condition(
                api::APPLIED,
                Status::False,
                &ready.reason,
                ready.message.clone(),
                generation,
            ),
            now.clone(),
        );
        return Some((
            Phase::Failed,
            Summary::Stalled {
                reason: Reason::FluxFailed,
                message: format!(
                    "Flux Kustomization {name} failed ({}): {}",
                    ready.reason, ready.message
                ),
            },
            Requeue::After(Duration::from_secs(60)),
        ));
    }
    None
}

/// Committed, and Flux has yet to apply it.
fn waiting((reason, message): (Reason, String)) -> Option<Verdict> {
    Some((
        Phase::Committed,
        Summary::Progressing { reason, message },
        Requeue::After(Duration::from_secs(10)),
    ))
}

/// Why a Kustomization that is missing, not installed or suspended applies nothing.
fn not_running(name: &str, state: &KustomizationState) -> (Reason, String) {
    match state {
        KustomizationState::NotInstalled => (
            Reason::FluxNotInstalled,
            format!(
                "committed; Flux Kustomizations are not installed in this cluster (Kustomization {name})"
            ),
        ),
        KustomizationState::NotFound => (
            Reason::FluxKustomizationNotFound,
            format!("committed; Flux Kustomization {name} named by the Environment does not exist"),
        ),
        KustomizationState::Found { .. } => (
            Reason::FluxSuspended,
            format!("committed; Flux Kustomization {name} is suspended"),
        ),
    }
}

fn rolling(reason: Reason, message: String) -> Option<Verdict> {
    Some((
        Phase::Applied,
        Summary::Progressing { reason, message },
        Requeue::After(ROLLING),
    ))
}

/// How often a rollout is looked at: every second in its first 20 s (most finish there, and
/// `Ready` should follow at once), every 5 s after that (a slow rollout of many Releases
/// must not cost the API server several reads per Release per second).
const ROLLING: Duration = Duration::from_secs(1);
const ROLLING_SLOW: Duration = Duration::from_secs(5);

fn pace(st: &ReleaseStatus, verdict: Verdict, now: &Time) -> Verdict {
    let (phase, summary, requeue) = verdict;
    let applied_for = st
        .conditions
        .iter()
        .find(|c| c.type_ == api::APPLIED)
        .map(|c| (now.0 - c.last_transition_time.0).get_seconds())
        .unwrap_or(0);
    let requeue = match requeue {
        Requeue::After(d) if d == ROLLING && applied_for > 20 => Requeue::After(ROLLING_SLOW),
        other => other,
    };
    (phase, summary, requeue)
}

/// Ready=False reasons of a HelmRelease that helm-controller retries by itself.
const TRANSIENT_HELM_REASONS: [&str; 3] = ["SourceNotReady", "DependencyNotReady", "Progressing"];

/// `None` when there is no HelmRelease to wait for, or it installed this version.
fn judge_helm(helm: Option<&HelmRelease>) -> Option<Verdict> {
    match helm? {
        HelmRelease::Missing { name } => rolling(
            Reason::WaitingForHelmRelease,
            format!("Flux applied the commit; HelmRelease {name} does not exist yet"),
        ),
        HelmRelease::Found {
            name,
            current,
            ready,
        } => {
            let ready = ready.clone().unwrap_or_default();
            // helm-controller reports a chart not fetched yet, or a dependency not ready, as
            // Ready=False too, and retries: those are waits, not failures.
            let transient = TRANSIENT_HELM_REASONS.contains(&ready.reason.as_str());
            if *current && ready.status == "False" && !transient {
                return Some((
                    Phase::Failed,
                    Summary::Stalled {
                        reason: Reason::HelmReleaseFailed,
                        message: format!(
                            "HelmRelease {name} failed ({}): {}",
                            ready.reason, ready.message
                        ),
                    },
                    Requeue::After(Duration::from_secs(30)),
                ));
            }
            if *current && ready.status == "True" {
                return None;
            }
            rolling(
                Reason::WaitingForHelmRelease,
                format!("waiting for HelmRelease {name} to install this version"),
            )
        }
    }
}

/// Records the workloads; `None` when every Deployment runs the new version.
fn judge_deployments(st: &mut ReleaseStatus, cluster: &Cluster) -> Option<Verdict> {
    let deployments = cluster.deployments.as_ref()?;
    let (mut workloads, mut stuck, mut rollouts) = (vec![], vec![], vec![]);
    for d in deployments {
        let desired = d.desired;
        let mut w = WorkloadStatus {
            kind: "Deployment".into(),
            name: d.name.clone(),
            desired,
            updated: d.updated,
            ready: d.ready,
            available: d.available,
            message: None,
        };
        if !d.done() {
            let mut msg = format!(
                "{}/{desired} updated, {}/{desired} ready, {}/{desired} available",
                d.updated, d.ready, d.available
            );
            if let Some(m) = &d.deadline_exceeded {
                msg = format!("ProgressDeadlineExceeded ({m}); {msg}");
            }
            if !d.pods.is_empty() {
                let texts: Vec<&str> = d.pods.iter().map(|(_, t)| t.as_str()).collect();
                msg = format!("{msg}; {}", texts.join("; "));
            }
            w.message = Some(msg.clone());
            let is_stuck = d.deadline_exceeded.is_some() || d.pods.iter().any(|(s, _)| *s);
            let list = if is_stuck { &mut stuck } else { &mut rollouts };
            list.push(format!("Deployment {}: {msg}", d.name));
        }
        workloads.push(w);
    }
    workloads.sort_by(|a, b| a.name.cmp(&b.name));
    st.workloads = workloads;
    if !stuck.is_empty() {
        return Some((
            Phase::Failed,
            Summary::Stalled {
                reason: Reason::RolloutStuck,
                message: stuck.join("; "),
            },
            Requeue::After(Duration::from_secs(15)),
        ));
    }
    if !rollouts.is_empty() {
        return rolling(Reason::RollingOut, rollouts.join("; "));
    }
    None
}

/// Adds the applied version to `status.history` (newest first, bounded).
fn record_history(st: &mut ReleaseStatus, rel: &Release, commit: &str, now: &Time, limit: usize) {
    if st.history.first().is_some_and(|h| h.commit == commit) {
        return;
    }
    st.history.insert(
        0,
        HistoryEntry {
            version: rel.spec.version.clone(),
            commit: commit.to_string(),
            applied_at: now.0.to_string(),
            requested_by: rel.requested_by(),
        },
    );
    st.history.truncate(limit);
}
