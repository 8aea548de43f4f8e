//! decide: pure functions from a Release and what was observed to what to do ([`plan`]) and
//! to the complete next status ([`status`]). No I/O and no clock (the time is an input), so
//! every situation is a table row in the unit tests. The phase is computed here, once, from
//! the facts; nothing else assigns it.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{
    self, Environment, HistoryEntry, Phase, Release, ReleaseStatus, Status, WorkloadStatus,
    condition, remove_condition, set_condition,
};
use crate::flux::{self, FluxCondition};
use crate::gitops::{AppFiles, Author, Change, ChangeKind, Credentials, RepoKey, redact_url};
use crate::render::Rendered;

use super::super::Error;
use super::super::context::RESYNC;
use super::super::reason::Reason;
use super::super::status::{Summary, summarise, truncate};

/// Where a Release's files go: repository, branch and folder of its Environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub repo: RepoKey,
    pub path: String,
}

impl Target {
    pub fn of(env: &Environment) -> Target {
        Target {
            repo: RepoKey {
                url: env.spec.repository.url.clone(),
                branch: env.spec.repository.branch.clone(),
            },
            path: env.spec.repository.path.clone(),
        }
    }

    /// `<URL without credentials> <branch> <path>`, as `status.target` shows it.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            redact_url(&self.repo.url),
            self.repo.branch,
            self.path
        )
    }
}

/// What git holds for a Release, as observed.
#[derive(Debug)]
pub struct GitFacts {
    pub creds: Credentials,
    /// The app folder at the branch head, when it was read (see [`needs_folder`]).
    pub folder: Option<Option<AppFiles>>,
}

/// Everything the first observation found, before anything is decided.
#[derive(Debug)]
pub struct Observed {
    pub env: Result<Environment, Error>,
    /// The live Releases of this namespace that claim the same app in the same Environment,
    /// in ownership order (oldest, then uid).
    pub claimants: Vec<String>,
    /// `None` when there was no Environment to render for.
    pub rendered: Option<Result<Rendered, Error>>,
    /// `None` when nothing needed git (no Environment, suspended, render failed).
    pub git: Option<Result<GitFacts, Error>>,
}

/// An error that stops a reconcile: seen by observe, or found by decide or act.
#[derive(Debug)]
pub enum Fault<'a> {
    Seen(&'a Error),
    Found(Error),
}

impl Fault<'_> {
    pub fn error(&self) -> &Error {
        match self {
            Fault::Seen(e) => e,
            Fault::Found(e) => e,
        }
    }
}

/// Why nothing is (or can be) in git for this generation.
#[derive(Debug)]
pub enum Stopped<'a> {
    Failed(Fault<'a>),
    Suspended { environment: String },
}

/// What to do about git.
#[derive(Debug)]
pub enum Plan<'a> {
    Stop(Stopped<'a>),
    /// This generation is in git at this target already: do not write again; show drift.
    Compare {
        written: Written<'a>,
    },
    /// Write this change.
    Submit {
        env: &'a Environment,
        rendered: &'a Rendered,
        git: &'a GitFacts,
        change: Box<Change>,
    },
}

/// The Release's files are in git at `commit`.
#[derive(Debug)]
pub struct Written<'a> {
    pub env: &'a Environment,
    pub rendered: &'a Rendered,
    pub creds: &'a Credentials,
    pub target: Target,
    pub commit: String,
    /// A commit of ours was pushed by this reconcile.
    pub pushed: bool,
    /// When compared instead of written: the paths that differ from what it renders.
    pub drift: Option<Vec<String>>,
}

/// Where a reconcile got to.
#[derive(Debug)]
pub enum Progress<'a> {
    Stopped(Stopped<'a>),
    InGit(Written<'a>, Box<Result<Cluster, Error>>),
}

/// What the cluster shows of a commit: the Flux objects that apply it and the workloads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// The Kustomizations whose applied revision decides (empty: nothing to wait for).
    pub kustomizations: Vec<Kustomization>,
    /// The HelmRelease of a Helm-sourced Release, once Flux applied the commit.
    pub helm: Option<HelmRelease>,
    /// The Release's Deployments, once Flux applied the commit.
    pub deployments: Option<Vec<Deployment>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Kustomization {
    /// `namespace/name`.
    pub name: String,
    pub state: KustomizationState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum KustomizationState {
    /// The Kustomization CRD is not installed.
    NotInstalled,
    NotFound,
    Found {
        suspended: bool,
        ready: Option<FluxCondition>,
        /// Its last applied revision contains the commit.
        applied: bool,
        /// Its last attempted revision contains the commit.
        attempted: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum HelmRelease {
    Missing {
        name: String,
    },
    Found {
        name: String,
        /// Its status speaks of its current generation.
        current: bool,
        ready: Option<FluxCondition>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub name: String,
    pub desired: i32,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The controller saw the current generation.
    pub observed: bool,
    /// The message of a `ProgressDeadlineExceeded` condition.
    pub deadline_exceeded: Option<String>,
    /// Why its pods do not run: `(stuck, text)`; stuck means it will not finish by itself.
    pub pods: Vec<(bool, String)>,
}

impl Deployment {
    pub fn done(&self) -> bool {
        self.observed
            && self.updated == self.desired
            && self.ready == self.desired
            && self.available == self.desired
            && self.replicas == self.desired
    }
}

/// When to look again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// After an error: exponential backoff per object.
    Backoff,
    After(Duration),
}

/// The outcome of a reconcile: the complete next status, its summary, when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: ReleaseStatus,
    pub summary: Summary,
    pub requeue: Requeue,
    /// An Event besides the `Ready` transition (e.g. the Release moved to a new target).
    pub note: Option<(Reason, String)>,
}

/// Whether observe must read the app folder: before the first write to a target (to refuse
/// a folder another Release owns), when this generation is already written (to show
/// drift), and whenever several Releases claim the app (the record in git breaks the tie).
pub fn needs_folder(rel: &Release, rendered: &Rendered, target: &Target, claimants: usize) -> bool {
    let st = rel.status.clone().unwrap_or_default();
    claimants > 1
        || already_written(rel, rendered, target)
        || !same_target(&st, target)
        || st.commit.is_none()
}

fn same_target(st: &ReleaseStatus, target: &Target) -> bool {
    // Releases written before `status.target` existed were written to the current target.
    st.target.as_deref().is_none_or(|t| t == target.describe())
}

/// This generation, rendered the same, is in a commit at this very target.
pub fn already_written(rel: &Release, rendered: &Rendered, target: &Target) -> bool {
    let Some(st) = rel.status.as_ref() else {
        return false;
    };
    st.observed_generation == rel.metadata.generation
        && st.rendered_digest.as_deref() == Some(rendered.digest.as_str())
        && st.commit.is_some()
        && same_target(st, target)
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == api::COMMITTED && c.status == "True")
}

/// Decides what to do about git from what was observed.
pub fn plan<'a>(rel: &Release, obs: &'a Observed) -> Plan<'a> {
    let fail = |e: &'a Error| Plan::Stop(Stopped::Failed(Fault::Seen(e)));
    let env = match &obs.env {
        Ok(env) => env,
        Err(e) => return fail(e),
    };
    if env.spec.suspend {
        return Plan::Stop(Stopped::Suspended {
            environment: env.name_any(),
        });
    }
    let rendered = match &obs.rendered {
        Some(Ok(r)) => r,
        Some(Err(e)) => return fail(e),
        None => {
            return Plan::Stop(Stopped::Failed(Fault::Found(Error::Internal(
                "the Release was not rendered".into(),
            ))));
        }
    };
    let git = match &obs.git {
        Some(Ok(g)) => g,
        Some(Err(e)) => return fail(e),
        None => {
            return Plan::Stop(Stopped::Failed(Fault::Found(Error::Internal(
                "git was not observed".into(),
            ))));
        }
    };
    let target = Target::of(env);
    let ns = rel.namespace().unwrap_or_default();
    let this = format!("{ns}/{}", rel.name_any());
    if let Some(owner) = owner(obs, &ns, &this).filter(|o| *o != this) {
        return Plan::Stop(Stopped::Failed(Fault::Found(Error::AppConflict {
            app: rel.spec.app.clone(),
            environment: env.name_any(),
            owner,
        })));
    }
    if already_written(rel, rendered, &target) {
        let st = rel.status.clone().unwrap_or_default();
        let current = git.folder.clone().flatten().unwrap_or_default();
        return Plan::Compare {
            written: Written {
                env,
                rendered,
                creds: &git.creds,
                target,
                commit: st.commit.unwrap_or_default(),
                pushed: false,
                drift: Some(changed_paths(&rendered.files, &current)),
            },
        };
    }
    let author = env.author();
    let change = Change {
        release: this,
        generation: rel.metadata.generation.unwrap_or_default(),
        version: rel.spec.version.clone(),
        environment: env.name_any(),
        env_path: env.spec.repository.path.clone(),
        app: rel.spec.app.clone(),
        files: Some(rendered.files.clone()),
        entry: rendered.env_entry.clone(),
        author: Author {
            name: author.name,
            email: author.email,
        },
        kind: rel
            .rolled_back_from()
            .map(|from| ChangeKind::Rollback { from })
            .unwrap_or(ChangeKind::Release),
    };
    Plan::Submit {
        env,
        rendered,
        git,
        change: Box::new(change),
    }
}

/// Who owns the app folder, the same answer for every claimant: the Release recorded in
/// git when it still claims the folder (it won a race the cluster's order cannot see, e.g.
/// two Releases created in the same second) or lives in another namespace (a folder another
/// team wrote is never taken over); otherwise the oldest live claimant in this namespace.
fn owner(obs: &Observed, ns: &str, this: &str) -> Option<String> {
    let claimants: Vec<String> = obs.claimants.iter().map(|c| format!("{ns}/{c}")).collect();
    match git_owner(obs) {
        Some(o) if o == this || claimants.contains(&o) => Some(o),
        Some(o) if !o.starts_with(&format!("{ns}/")) => Some(o),
        // Recorded by a Release of this namespace that no longer claims it: the
        // cluster's order decides.
        _ => claimants.into_iter().next(),
    }
}

/// `namespace/name` recorded in the app folder's `.tumbler/release.yaml`, if it was read.
fn git_owner(obs: &Observed) -> Option<String> {
    let files = obs.git.as_ref()?.as_ref().ok()?.folder.as_ref()?.as_ref()?;
    owner_of(files.get(".tumbler/release.yaml")?)
}

/// `namespace/name` from the `.tumbler/release.yaml` of an app folder.
pub fn owner_of(bytes: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_saphyr::from_slice(bytes).ok()?;
    let md = doc.get("metadata")?;
    Some(format!(
        "{}/{}",
        md.get("namespace")?.as_str()?,
        md.get("name")?.as_str()?
    ))
}

/// The paths that differ between what the Release renders and what git has.
pub fn changed_paths(rendered: &AppFiles, current: &AppFiles) -> Vec<String> {
    let mut paths: Vec<String> = rendered
        .iter()
        .filter(|(p, b)| current.get(*p) != Some(*b))
        .map(|(p, _)| p.clone())
        .chain(
            current
                .keys()
                .filter(|p| !rendered.contains_key(*p))
                .cloned(),
        )
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Whether every Kustomization that decides has applied the commit (so the workloads are
/// worth reading).
pub fn flux_applied(kustomizations: &[Kustomization]) -> bool {
    kustomizations.iter().all(|k| {
        matches!(&k.state, KustomizationState::Found { suspended: false, ready: Some(r), applied: true, .. } if r.status == "True")
    })
}

/// Everything the status is decided from.
pub struct Facts<'a> {
    pub release: &'a Release,
    pub now: Time,
    /// The render result, when there was an Environment to render for.
    pub rendered: Option<&'a Result<Rendered, Error>>,
    pub progress: Progress<'a>,
}

/// The complete next status of a Release.
pub fn status(facts: &Facts<'_>) -> Decision {
    let rel = facts.release;
    let generation = rel.metadata.generation;
    let old = rel.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let now = &facts.now;
    st.observed_generation = generation;
    match facts.rendered {
        Some(Ok(r)) => {
            set_condition(
                &mut st.conditions,
                condition(
                    api::RENDERED,
                    Status::True,
                    Reason::Rendered.as_str(),
                    format!("{} files in {}, {}", r.files.len(), r.app_dir, r.digest),
                    generation,
                ),
                now.clone(),
            );
        }
        Some(Err(e)) => {
            set_condition(
                &mut st.conditions,
                condition(
                    api::RENDERED,
                    Status::False,
                    e.reason().as_str(),
                    e.to_string(),
                    generation,
                ),
                now.clone(),
            );
        }
        None => {}
    }
    // Before this generation is in git, the phase says where the last one got, unless the
    // Release changed since: then it is Pending (or Failed when a person must act).
    let unwritten_phase = |terminal: bool| {
        if terminal {
            Phase::Failed
        } else if old.observed_generation == generation {
            old.phase
        } else {
            Phase::Pending
        }
    };
    let mut note = None;
    let (phase, summary, requeue) = match &facts.progress {
        Progress::Stopped(Stopped::Suspended { environment }) => (
            unwritten_phase(false),
            Summary::Progressing {
                reason: Reason::EnvironmentSuspended,
                message: format!(
                    "Environment {environment} is suspended; the Release is committed once it resumes"
                ),
            },
            Requeue::After(Duration::from_secs(60)),
        ),
        Progress::Stopped(Stopped::Failed(fault)) => {
            let err = fault.error();
            (
                unwritten_phase(err.is_terminal()),
                Summary::of_error(err),
                Requeue::Backoff,
            )
        }
        Progress::InGit(w, cluster) => {
            let target = w.target.describe();
            if old.target.as_ref().is_some_and(|t| *t != target) && w.pushed {
                note = Some((
                    Reason::Repointed,
                    format!(
                        "written to {target} (the Environment moved from {}); the old folder stays where it was",
                        old.target.clone().unwrap_or_default()
                    ),
                ));
            }
            record_commit(&mut st, w, generation, now);
            match cluster.as_ref() {
                Ok(cluster) => judge_cluster(&mut st, rel, w, cluster, generation, now),
                Err(e) => (
                    // The commit is recorded; what the cluster did is unknown for now.
                    if old.commit.as_deref() == Some(w.commit.as_str()) {
                        old.phase
                    } else {
                        Phase::Committed
                    },
                    Summary::Progressing {
                        reason: e.reason(),
                        message: format!(
                            "committed {}; cannot read what the cluster did: {e}",
                            short(&w.commit)
                        ),
                    },
                    Requeue::Backoff,
                ),
            }
        }
    };
    st.phase = phase;
    summarise(&mut st.conditions, &summary, generation, now);
    st.message = Some(truncate(summary.message(), 500));
    Decision {
        status: st,
        summary,
        requeue,
        note,
    }
}

/// Records the commit, target and digest, and the `Committed`/`Drifted` conditions.
fn record_commit(st: &mut ReleaseStatus, w: &Written<'_>, generation: Option<i64>, now: &Time) {
    st.revision = Some(flux::revision(&w.target.repo.branch, &w.commit));
    st.commit_short = Some(w.commit.chars().take(8).collect());
    st.commit = Some(w.commit.clone());
    st.rendered_digest = Some(w.rendered.digest.clone());
    st.target = Some(w.target.describe());
    match &w.drift {
        None => {
            set_condition(
                &mut st.conditions,
                condition(
                    api::COMMITTED,
                    Status::True,
                    if w.pushed {
                        Reason::Pushed.as_str()
                    } else {
                        Reason::UpToDate.as_str()
                    },
                    format!(
                        "commit {} on {}",
                        &w.commit[..w.commit.len().min(12)],
                        w.target.repo.branch
                    ),
                    generation,
                ),
                now.clone(),
            );
            remove_condition(&mut st.conditions, api::DRIFTED);
        }
        Some(changed) if changed.is_empty() => {
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
        }
        Some(changed) => {
            set_condition(
                &mut st.conditions,
                condition(
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
                now.clone(),
            );
        }
    }
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
    generation: Option<i64>,
    now: &Time,
) -> (Phase, Summary, Requeue) {
    let limit = w.env.spec.history_limit.unwrap_or(10) as usize;
    if cluster.kustomizations.is_empty() {
        record_history(st, rel, &w.commit, now, limit);
        return (
            Phase::Committed,
            Summary::Ready {
                reason: Reason::Committed,
                message: format!(
                    "committed {} (the Environment lists no Flux Kustomization to wait for)",
                    short(&w.commit)
                ),
            },
            Requeue::After(RESYNC),
        );
    }
    let waiting = |reason, message| {
        (
            Phase::Committed,
            Summary::Progressing { reason, message },
            Requeue::After(Duration::from_secs(10)),
        )
    };
    for ks in &cluster.kustomizations {
        let name = &ks.name;
        let (suspended, ready, applied, attempted) = match &ks.state {
            KustomizationState::NotInstalled => {
                return waiting(
                    Reason::FluxNotInstalled,
                    format!(
                        "committed; Flux Kustomizations are not installed in this cluster (Kustomization {name})"
                    ),
                );
            }
            KustomizationState::NotFound => {
                return waiting(
                    Reason::FluxKustomizationNotFound,
                    format!(
                        "committed; Flux Kustomization {name} named by the Environment does not exist"
                    ),
                );
            }
            KustomizationState::Found {
                suspended,
                ready,
                applied,
                attempted,
            } => (
                *suspended,
                ready.clone().unwrap_or_default(),
                *applied,
                *attempted,
            ),
        };
        if suspended {
            return waiting(
                Reason::FluxSuspended,
                format!("committed; Flux Kustomization {name} is suspended"),
            );
        }
        if ready.status == "True" && applied {
            continue;
        }
        if ready.status == "False" && attempted {
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
            return (
                Phase::Failed,
                Summary::Stalled {
                    reason: Reason::FluxFailed,
                    message: format!(
                        "Flux Kustomization {name} failed ({}): {}",
                        ready.reason, ready.message
                    ),
                },
                Requeue::After(Duration::from_secs(60)),
            );
        }
        return waiting(
            Reason::WaitingForFlux,
            format!(
                "committed {}; waiting for Flux Kustomization {name} to apply it",
                short(&w.commit)
            ),
        );
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
            generation,
        ),
        now.clone(),
    );
    if let Some(verdict) = judge_workloads(st, cluster) {
        return verdict;
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

/// `None` when everything the Release applied runs.
fn judge_workloads(st: &mut ReleaseStatus, cluster: &Cluster) -> Option<(Phase, Summary, Requeue)> {
    let rolling = |reason, message| {
        Some((
            Phase::Applied,
            Summary::Progressing { reason, message },
            Requeue::After(Duration::from_secs(3)),
        ))
    };
    match &cluster.helm {
        Some(HelmRelease::Missing { name }) => {
            return rolling(
                Reason::WaitingForHelmRelease,
                format!("Flux applied the commit; HelmRelease {name} does not exist yet"),
            );
        }
        Some(HelmRelease::Found {
            name,
            current,
            ready,
        }) => {
            let ready = ready.clone().unwrap_or_default();
            if *current && ready.status == "False" {
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
            if !(*current && ready.status == "True") {
                return rolling(
                    Reason::WaitingForHelmRelease,
                    format!("waiting for HelmRelease {name} to install this version"),
                );
            }
        }
        None => {}
    }
    let deployments = cluster.deployments.as_ref()?;
    let (mut workloads, mut stuck, mut rollouts) = (vec![], vec![], vec![]);
    for d in deployments {
        let mut w = WorkloadStatus {
            kind: "Deployment".into(),
            name: d.name.clone(),
            desired: d.desired,
            updated: d.updated,
            ready: d.ready,
            available: d.available,
            message: None,
        };
        if !d.done() {
            let desired = d.desired;
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
            if d.deadline_exceeded.is_some() || d.pods.iter().any(|(s, _)| *s) {
                stuck.push(format!("Deployment {}: {msg}", d.name));
            } else {
                rollouts.push(format!("Deployment {}: {msg}", d.name));
            }
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
        },
    );
    st.history.truncate(limit);
}

/// What to do about a Release being deleted.
#[derive(Debug)]
pub enum Deletion {
    /// Try again later (the error is transient).
    Retry(Error),
    /// Remove the finalizer without touching git; the note, if any, becomes a Warning.
    LetGo(Option<(Reason, String)>),
    /// Remove the app folder in a commit, then let go.
    Remove {
        target: Target,
        creds: Credentials,
        change: Box<Change>,
    },
}

/// Decides the deletion of a Release: remove its folder when it wrote it; let go with a
/// Warning when that cannot be done at all (Environment, Secret or repository gone), so
/// that deleting a namespace never hangs; retry what time may fix.
pub fn deletion(rel: &Release, facts: super::observe::Deleting) -> Deletion {
    let ns = rel.namespace().unwrap_or_default();
    let this = format!("{ns}/{}", rel.name_any());
    let env = match facts.env {
        Err(e) => return Deletion::Retry(e),
        Ok(None) => {
            return Deletion::LetGo(Some((
                Reason::EnvironmentGone,
                format!(
                    "Environment {} no longer exists; the app folder {} stays in git",
                    rel.spec.environment, rel.spec.app
                ),
            )));
        }
        Ok(Some(env)) => env,
    };
    let target = Target::of(&env);
    let (creds, owner) = match facts.git {
        Some(Ok(git)) => git,
        Some(Err(e)) if e.is_terminal() => {
            return Deletion::LetGo(Some((
                Reason::FolderLeftInGit,
                format!(
                    "cannot remove {}/{} from git ({e}); it stays there: remove it by hand",
                    target.path, rel.spec.app
                ),
            )));
        }
        Some(Err(e)) => return Deletion::Retry(e),
        None => return Deletion::Retry(Error::Internal("git was not observed".into())),
    };
    if owner.as_deref() != Some(this.as_str()) {
        // Never written by this Release (refused, or another one owns the folder).
        return Deletion::LetGo(None);
    }
    let author = env.author();
    Deletion::Remove {
        change: Box::new(Change {
            release: this,
            generation: rel.metadata.generation.unwrap_or_default(),
            version: rel.spec.version.clone(),
            environment: env.name_any(),
            env_path: target.path.clone(),
            app: rel.spec.app.clone(),
            files: None,
            entry: None,
            author: Author {
                name: author.name,
                email: author.email,
            },
            kind: ChangeKind::Delete,
        }),
        target,
        creds,
    }
}
