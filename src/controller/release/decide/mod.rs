//! decide: pure functions from a Release and what was observed to what to do ([`plan`]) and
//! to the complete next status ([`status`]). No I/O and no clock (the time is an input), so
//! every situation is a table row in the unit tests. The phase is computed here, once, from
//! the facts; nothing else assigns it.

pub mod admission;
pub mod control;
pub mod promotion;
mod status;

use std::time::Duration;

use kube::ResourceExt;

use crate::api::{self, Environment, Release, ReleaseStatus};
use crate::flux::FluxCondition;
use crate::gitops::{AppFiles, Author, Change, ChangeKind, Credentials, RepoKey, redact_url};
use crate::render::Rendered;

use super::super::Error;
use super::super::reason::Reason;
use super::super::status::Summary;

pub use status::{Facts, status};

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
    /// An older Environment (`namespace`, `name`) writing to an equal or nested folder.
    pub overlaps: Option<(String, String)>,
    /// Labels of the Release's namespace, read when the Environment admits by selector.
    pub namespace_labels: Option<Result<std::collections::BTreeMap<String, String>, Error>>,
    /// The live Releases (`namespace/name`, any namespace) that claim the same app in the
    /// same Environment, in ownership order (oldest, then uid).
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
    Suspended {
        environment: String,
    },
    /// The Release itself is suspended (`spec.suspend`); `pending`: it renders other files
    /// than those last committed.
    ReleaseSuspended {
        pending: bool,
    },
}

/// What to do about git.
#[derive(Debug)]
pub enum Plan<'a> {
    Stop(Stopped<'a>),
    /// This generation is in git at this target already: do not write again; show drift.
    Compare {
        written: Written<'a>,
    },
    /// Write this change; then, when the Environment moved to another folder of the same
    /// repository and branch, remove the app's old folder with `move_out`.
    Submit {
        env: &'a Environment,
        rendered: &'a Rendered,
        git: &'a GitFacts,
        change: Box<Change>,
        move_out: Option<Box<Change>>,
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
    if rel.spec.suspend {
        let committed = rel
            .status
            .as_ref()
            .and_then(|s| s.rendered_digest.as_deref());
        let pending = match &obs.rendered {
            Some(Ok(r)) => committed != Some(r.digest.as_str()),
            _ => false,
        };
        return Plan::Stop(Stopped::ReleaseSuspended { pending });
    }
    let env = match admitted(rel, obs) {
        Ok(env) => env,
        Err(stop) => return Plan::Stop(stop),
    };
    let (rendered, git) = match (&obs.rendered, &obs.git) {
        (Some(Err(e)), _) | (Some(Ok(_)), Some(Err(e))) => {
            return Plan::Stop(Stopped::Failed(Fault::Seen(e)));
        }
        (Some(Ok(r)), Some(Ok(g))) => (r, g),
        _ => {
            return Plan::Stop(Stopped::Failed(Fault::Found(Error::Internal(
                "the Release was not rendered, or git not read".into(),
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
        let drift = changed_paths(&rendered.files, &current);
        // A reconcile request (`reconcile.tumbler.dev/requestedAt`) on a drifted folder
        // writes the rendered files again; otherwise the generation is never written twice.
        if drift.is_empty() || rel.pending_reconcile_request().is_none() {
            return Plan::Compare {
                written: Written {
                    env,
                    rendered,
                    creds: &git.creds,
                    target,
                    commit: st.commit.unwrap_or_default(),
                    pushed: false,
                    drift: Some(drift),
                },
            };
        }
    }
    // The owner check above accepted a recorded owner that no longer claims the folder:
    // the writer may replace it, and only it.
    let replaces = git_owner(obs).filter(|o| *o != this);
    let change = change_for(rel, env, rendered, this, replaces);
    let move_out = moved_from(rel, &target).map(|old_path| {
        Box::new(Change {
            env_path: old_path,
            files: None,
            entry: None,
            kind: ChangeKind::Delete,
            replaces: None,
            ..change.clone()
        })
    });
    Plan::Submit {
        env,
        rendered,
        git,
        change: Box::new(change),
        move_out,
    }
}

/// The Environment, when it exists, is not suspended, does not overlap an older one, and
/// admits this Release; otherwise why the reconcile stops.
fn admitted<'a>(rel: &Release, obs: &'a Observed) -> Result<&'a Environment, Stopped<'a>> {
    let failed = |e: Error| Stopped::Failed(Fault::Found(e));
    let env = obs
        .env
        .as_ref()
        .map_err(|e| Stopped::Failed(Fault::Seen(e)))?;
    if env.spec.suspend {
        return Err(Stopped::Suspended {
            environment: env.name_any(),
        });
    }
    if let Some((ns, name)) = &obs.overlaps {
        return Err(failed(Error::OverlappingEnvironment {
            environment: format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any()),
            other: format!("{ns}/{name}"),
        }));
    }
    let labels = match &obs.namespace_labels {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => return Err(Stopped::Failed(Fault::Seen(e))),
        None => None,
    };
    match admission::refusal(rel, env, labels) {
        Some(err) => Err(failed(err)),
        None => Ok(env),
    }
}

/// The change that writes what the Release renders, with its trailers.
fn change_for(
    rel: &Release,
    env: &Environment,
    rendered: &Rendered,
    release: String,
    replaces: Option<String>,
) -> Change {
    let author = env.author();
    Change {
        release,
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
            .or_else(|| rel.promoted_from().map(|from| ChangeKind::Promote { from }))
            .unwrap_or(ChangeKind::Release),
        replaces,
        requested_by: rel.requested_by(),
    }
}

/// The folder this Release was last written to, when the Environment now points at another
/// folder of the same repository and branch (`status.target` is `<URL> <branch> <path>`).
/// Another repository or branch: `None` — the old folder stays, and the `Repointed` Event
/// says so.
pub fn moved_from(rel: &Release, target: &Target) -> Option<String> {
    let old = rel.status.as_ref()?.target.as_deref()?;
    let mut parts = old.rsplitn(3, ' ');
    let (path, branch, url) = (parts.next()?, parts.next()?, parts.next()?);
    (url == redact_url(&target.repo.url) && branch == target.repo.branch && path != target.path)
        .then(|| path.to_string())
}

/// Who owns the app folder, the same answer for every claimant: the Release recorded in
/// git when it still claims the folder (it won a race the cluster's order cannot see, e.g.
/// two Releases created in the same second) or lives in another namespace (a folder another
/// team wrote is never taken over); otherwise the oldest live claimant.
fn owner(obs: &Observed, ns: &str, this: &str) -> Option<String> {
    match git_owner(obs) {
        Some(o) if o == this || obs.claimants.contains(&o) => Some(o),
        Some(o) if !o.starts_with(&format!("{ns}/")) => Some(o),
        // Recorded by a Release of this namespace that no longer claims it: the
        // cluster's order decides.
        _ => obs.claimants.first().cloned(),
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
            replaces: None,
            // Who deletes is not in managedFields.
            requested_by: None,
        }),
        target,
        creds,
    }
}
