//! The Release reconciler: resolve (Environment, Secret) → render → commit → report.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::api::{
    self, Environment, Phase, Release, ReleaseStatus, Status, condition, set_condition,
};
use crate::flux::{self, FluxObject};
use crate::gitops::{Author, Change, ChangeKind, Credentials, Outcome, RepoKey};
use crate::render;

use super::context::{Context, RESYNC};
use super::status::{Summary, key, now, summarise, transition_event, type_meta};
use super::{Error, FINALIZER, MANAGER};

/// Entry point of the Release controller.
pub async fn reconcile(rel: Arc<Release>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = rel.namespace().unwrap_or_default();
    let _timer = ctx.metrics.reconcile("Release");
    let span = info_span!("release", namespace = %ns, name = %rel.name_any());
    let api = ctx.releases_api(&ns);
    async move {
        finalizer(&api, FINALIZER, rel, |event| async {
            match event {
                FinalizerEvent::Apply(rel) => apply(rel, &ctx).await,
                FinalizerEvent::Cleanup(rel) => cleanup(rel, &ctx).await,
            }
        })
        .await
        .map_err(|e| match e {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(other.to_string()),
        })
    }
    .instrument(span)
    .await
}

/// Retry with backoff after an error the reconcile could not turn into status.
pub fn error_policy(rel: Arc<Release>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error("Release", err.reason());
    warn!(namespace = %rel.namespace().unwrap_or_default(), name = %rel.name_any(), reason = err.reason(), error = %err, "reconcile failed");
    Action::requeue(ctx.backoff(&key(&*rel)))
}

/// Whether a Release has a commit that Flux has not settled yet.
pub fn waiting_for_flux(rel: &Release) -> bool {
    rel.status
        .as_ref()
        .is_some_and(|s| s.commit.is_some() && matches!(s.phase, Phase::Committed | Phase::Applied))
}

/// What one pass of the pipeline ended with.
pub(super) struct Report {
    pub(super) summary: Summary<'static>,
    pub(super) requeue: Duration,
}

async fn apply(rel: Arc<Release>, ctx: &Context) -> Result<Action, Error> {
    let object_key = key(&*rel);
    let generation = rel.metadata.generation;
    let old = rel.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let now = now();

    let report = match pipeline(&rel, ctx, &mut st, &now).await {
        Ok(report) => {
            ctx.succeeded(&object_key);
            report
        }
        Err(Error::Kube(e)) => return Err(Error::Kube(e)),
        Err(err) => {
            let message = err.to_string();
            warn!(reason = err.reason(), error = %message, "release not committed");
            ctx.metrics.error("Release", err.reason());
            if matches!(err, Error::Render(_)) {
                set_condition(
                    &mut st.conditions,
                    condition(
                        api::RENDERED,
                        Status::False,
                        err.reason(),
                        message.clone(),
                        generation,
                    ),
                    now.clone(),
                );
            }
            let reason = err.reason();
            let requeue = ctx.backoff(&object_key);
            if err.stalled() {
                st.phase = Phase::Failed;
                Report {
                    summary: Summary::Stalled { reason, message },
                    requeue,
                }
            } else {
                Report {
                    summary: Summary::Progressing { reason, message },
                    requeue,
                }
            }
        }
    };

    summarise(&mut st.conditions, &report.summary, generation, &now);
    st.observed_generation = generation;
    st.message = Some(super::status::truncate(report.summary.message(), 500));
    write_status(ctx, &rel, &old, st).await?;
    Ok(Action::requeue(report.requeue))
}

async fn pipeline(
    rel: &Release,
    ctx: &Context,
    st: &mut ReleaseStatus,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Result<Report, Error> {
    let ns = rel.namespace().unwrap_or_default();
    let generation = rel.metadata.generation;

    // Resolve.
    let env = ctx
        .environments_api(&ns)
        .get_opt(&rel.spec.environment)
        .await?
        .ok_or_else(|| Error::EnvironmentNotFound {
            namespace: ns.clone(),
            name: rel.spec.environment.clone(),
        })?;
    if env.spec.suspend {
        return Ok(Report {
            summary: Summary::Progressing {
                reason: "EnvironmentSuspended",
                message: format!(
                    "Environment {} is suspended; the Release is committed once it resumes",
                    env.name_any()
                ),
            },
            requeue: Duration::from_secs(60),
        });
    }
    if let Some(owner) = claimant(ctx, rel) {
        return Err(Error::AppConflict {
            app: rel.spec.app.clone(),
            environment: rel.spec.environment.clone(),
            owner,
        });
    }

    // Render (pure).
    let rendered = render::render(rel, &env)?;
    set_condition(
        &mut st.conditions,
        condition(
            api::RENDERED,
            Status::True,
            "Rendered",
            format!(
                "{} files in {}, {}",
                rendered.files.len(),
                rendered.app_dir,
                rendered.digest
            ),
            generation,
        ),
        now.clone(),
    );

    // Commit.
    let creds = credentials(ctx, &env).await?;
    let repo = RepoKey {
        url: env.spec.repository.url.clone(),
        branch: env.spec.repository.branch.clone(),
    };
    let this = format!("{ns}/{}", rel.name_any());
    if st.commit.is_none() {
        // First commit of this Release: refuse to take over a folder another Release wrote.
        if let Some(files) = ctx
            .writer
            .read_app(
                repo.clone(),
                creds.clone(),
                &env.spec.repository.path,
                &rel.spec.app,
            )
            .await?
            && let Some(owner) = files.get(".tumbler/release.yaml").and_then(|b| owner_of(b))
            && owner != this
        {
            return Err(Error::AppConflict {
                app: rel.spec.app.clone(),
                environment: env.name_any(),
                owner,
            });
        }
    }
    // This generation is already in git: do not write again; report drift instead, so that
    // hand edits are shown (and only the next change to the Release overwrites them).
    let written = st.observed_generation == generation
        && st.rendered_digest.as_deref() == Some(rendered.digest.as_str())
        && st.commit.is_some()
        && st
            .conditions
            .iter()
            .any(|c| c.type_ == api::COMMITTED && c.status == "True");
    if written {
        let current = ctx
            .writer
            .read_app(
                repo.clone(),
                creds.clone(),
                &env.spec.repository.path,
                &rel.spec.app,
            )
            .await?
            .unwrap_or_default();
        let changed = changed_paths(&rendered.files, &current);
        let drift = if changed.is_empty() {
            condition(
                api::DRIFTED,
                Status::False,
                "InSync",
                "the app folder in git is what the Release renders",
                generation,
            )
        } else {
            condition(
                api::DRIFTED,
                Status::True,
                "ChangedOutsideTumbler",
                format!(
                    "{} changed in git outside Tumbler: {}; the next change to the Release writes its rendered state again",
                    rendered.app_dir,
                    changed.join(", ")
                ),
                generation,
            )
        };
        set_condition(&mut st.conditions, drift, now.clone());
        let commit = st.commit.clone().unwrap_or_default();
        return report_flux(
            ctx,
            rel,
            &env,
            &repo,
            &creds,
            &commit,
            false,
            &rendered.namespace,
            st,
            now,
        )
        .await;
    }
    let author = env.author();
    let change = Change {
        release: this,
        generation: generation.unwrap_or_default(),
        version: rel.spec.version.clone(),
        environment: env.name_any(),
        env_path: env.spec.repository.path.clone(),
        app: rel.spec.app.clone(),
        files: Some(rendered.files),
        entry: rendered.env_entry.clone(),
        author: Author {
            name: author.name,
            email: author.email,
        },
        kind: rollback_of(rel)
            .map(|from| ChangeKind::Rollback { from })
            .unwrap_or(ChangeKind::Release),
    };
    let (commit, pushed) = match ctx
        .writer
        .submit(repo.clone(), creds.clone(), change)
        .await?
    {
        Outcome::Committed { commit } => (commit, true),
        Outcome::Unchanged { commit } => (commit, false),
    };
    if pushed {
        info!(commit = %commit, version = %rel.spec.version, "pushed");
    }
    let commit_changed = st.commit.as_deref() != Some(commit.as_str());
    st.revision = Some(flux::revision(&repo.branch, &commit));
    st.commit_short = Some(commit.chars().take(8).collect());
    st.commit = Some(commit.clone());
    st.rendered_digest = Some(rendered.digest);
    if commit_changed && st.phase != Phase::Pending {
        st.phase = Phase::Committed;
    }
    if st.phase == Phase::Pending || st.phase == Phase::Failed {
        st.phase = Phase::Committed;
    }
    set_condition(
        &mut st.conditions,
        condition(
            api::COMMITTED,
            Status::True,
            if pushed { "Pushed" } else { "UpToDate" },
            format!(
                "commit {} on {}",
                &commit[..commit.len().min(12)],
                repo.branch
            ),
            generation,
        ),
        now.clone(),
    );

    api::remove_condition(&mut st.conditions, api::DRIFTED);
    report_flux(
        ctx,
        rel,
        &env,
        &repo,
        &creds,
        &commit,
        pushed,
        &rendered.namespace,
        st,
        now,
    )
    .await
}

/// Reports what Flux (and the cluster) did with the commit.
#[allow(clippy::too_many_arguments)]
async fn report_flux(
    ctx: &Context,
    rel: &Release,
    env: &Environment,
    repo: &RepoKey,
    creds: &Credentials,
    commit: &str,
    pushed: bool,
    namespace: &str,
    st: &mut ReleaseStatus,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Result<Report, Error> {
    let kustomizations = env
        .spec
        .flux
        .as_ref()
        .map(|f| f.kustomizations.clone())
        .unwrap_or_default();
    if kustomizations.is_empty() && applying_kustomizations(env, rel).is_empty() {
        record_history(st, rel, env, commit, now);
        return Ok(Report {
            summary: Summary::Ready {
                reason: "Committed",
                message: format!(
                    "committed {} (the Environment lists no Flux Kustomization to wait for)",
                    &commit[..8.min(commit.len())]
                ),
            },
            requeue: RESYNC,
        });
    }
    if pushed && ctx.config.nudge_flux {
        let mut all = kustomizations.clone();
        all.extend(
            applying_kustomizations(env, rel)
                .into_iter()
                .filter(|k| !kustomizations.contains(k)),
        );
        nudge_flux(ctx, env, &all).await;
    }
    let mut report = flux_feedback(ctx, rel, env, repo, creds, commit, st, now).await?;
    if st.phase == Phase::Ready {
        // Flux applied it; now the workloads must run it.
        match super::health::workload_health(ctx, rel, namespace, st).await? {
            Some(r) => report = r,
            None => record_history(st, rel, env, commit, now),
        }
    }
    Ok(report)
}

/// The Flux Kustomizations whose applied revision decides whether this Release is applied:
/// the Environment's, or in per-app mode the app's own.
fn applying_kustomizations(env: &Environment, rel: &Release) -> Vec<api::NamespacedObjectRef> {
    match env.spec.flux.as_ref() {
        Some(f) if f.per_app => {
            let (name, namespace) = render::per_app_kustomization(env, &rel.spec.app);
            vec![api::NamespacedObjectRef {
                name,
                namespace: Some(namespace),
            }]
        }
        Some(f) => f.kustomizations.clone(),
        None => vec![],
    }
}

/// The paths that differ between what the Release renders and what git has.
fn changed_paths(
    rendered: &crate::gitops::AppFiles,
    current: &crate::gitops::AppFiles,
) -> Vec<String> {
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

/// Adds the applied version to `status.history` (newest first, bounded).
fn record_history(
    st: &mut ReleaseStatus,
    rel: &Release,
    env: &Environment,
    commit: &str,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) {
    if st.history.first().is_some_and(|h| h.commit == commit) {
        return;
    }
    st.history.insert(
        0,
        api::HistoryEntry {
            version: rel.spec.version.clone(),
            commit: commit.to_string(),
            applied_at: now.0.to_string(),
        },
    );
    st.history
        .truncate(env.spec.history_limit.unwrap_or(10) as usize);
}

/// Annotation `tumbler rollback` sets: `<from version>` → the spec it restored.
pub const ROLLBACK_ANNOTATION: &str = "tumbler.dev/rollback";

/// The version a Release was rolled back from, while its spec is the rolled-back one.
fn rollback_of(rel: &Release) -> Option<String> {
    let value = rel
        .metadata
        .annotations
        .as_ref()?
        .get(ROLLBACK_ANNOTATION)?;
    let (from, to) = value.split_once(" -> ")?;
    (to == rel.spec.version).then(|| from.to_string())
}

/// The Release that owns `spec.app` in this Environment when several claim it: the oldest,
/// then the first by name. `None` when `rel` owns it.
fn claimant(ctx: &Context, rel: &Release) -> Option<String> {
    let ns = rel.namespace();
    let mut rivals: Vec<_> = ctx
        .releases
        .state()
        .into_iter()
        .filter(|r| {
            r.namespace() == ns
                && r.spec.environment == rel.spec.environment
                && r.spec.app == rel.spec.app
                && r.metadata.deletion_timestamp.is_none()
        })
        .collect();
    rivals.sort_by(|a, b| {
        let at = |r: &Release| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        at(a)
            .cmp(&at(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let owner = rivals.first()?;
    (owner.name_any() != rel.name_any()).then(|| key(&**owner))
}

/// `namespace/name` from the `.tumbler/release.yaml` of an app folder.
fn owner_of(bytes: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_saphyr::from_slice(bytes).ok()?;
    let md = doc.get("metadata")?;
    Some(format!(
        "{}/{}",
        md.get("namespace")?.as_str()?,
        md.get("name")?.as_str()?
    ))
}

/// Reads the Environment's credentials Secret. The values never leave this function except
/// inside `Credentials`, whose Debug output is redacted.
pub(super) async fn credentials(ctx: &Context, env: &Environment) -> Result<Credentials, Error> {
    read_credentials(&ctx.client, env).await
}

/// The credentials of an Environment, from its Secret.
pub async fn read_credentials(
    client: &kube::Client,
    env: &Environment,
) -> Result<Credentials, Error> {
    let Some(secret_ref) = env.spec.repository.secret_ref.as_ref() else {
        return Ok(Credentials::None);
    };
    let ns = env.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get_opt(&secret_ref.name)
        .await?
        .ok_or_else(|| Error::SecretNotFound {
            namespace: ns.clone(),
            name: secret_ref.name.clone(),
        })?;
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .filter(|s| !s.is_empty())
    };
    match (get("username"), get("password"), get("identity")) {
        (Some(username), Some(password), _) => Ok(Credentials::Basic { username, password }),
        (_, _, Some(identity)) => Ok(Credentials::Ssh {
            identity,
            known_hosts: get("known_hosts"),
        }),
        _ => Err(Error::InvalidSecret {
            name: secret_ref.name.clone(),
        }),
    }
}

/// Asks Flux to fetch and apply now (as `flux reconcile` does) instead of at its next poll.
async fn nudge_flux(ctx: &Context, env: &Environment, kustomizations: &[api::NamespacedObjectRef]) {
    let stamp = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {flux::RECONCILE_REQUESTED_AT: stamp}}});
    let env_ns = env.namespace().unwrap_or_default();
    let ks_res = flux::kustomization_resource();
    let mut sources = vec![];
    if let Some(git) = env
        .spec
        .flux
        .as_ref()
        .and_then(|f| f.git_repository.clone())
    {
        sources.push((git.name, git.namespace.unwrap_or_else(|| env_ns.clone())));
    }
    for ks in kustomizations {
        let ns = ks.namespace.clone().unwrap_or_else(|| env_ns.clone());
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ks_res);
        if sources.is_empty()
            && let Ok(Some(obj)) = api.get_opt(&ks.name).await
            && let Some((kind, name, src_ns)) = FluxObject::from_dynamic(&obj).source
            && kind == "GitRepository"
        {
            sources.push((name, src_ns.unwrap_or_else(|| ns.clone())));
        }
        if let Err(e) = api
            .patch(&ks.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            warn!(kustomization = %ks.name, error = %e, "could not ask Flux to reconcile");
        }
    }
    let git_res = flux::git_repository_resource();
    for (name, ns) in sources {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &git_res);
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            warn!(git_repository = %name, error = %e, "could not ask Flux to fetch");
        }
    }
}

/// Decides Ready/Failed/waiting from the Environment's Kustomizations.
#[allow(clippy::too_many_arguments)]
async fn flux_feedback(
    ctx: &Context,
    rel: &Release,
    env: &Environment,
    repo: &RepoKey,
    creds: &Credentials,
    commit: &str,
    st: &mut ReleaseStatus,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Result<Report, Error> {
    let generation = rel.metadata.generation;
    let env_ns = env.namespace().unwrap_or_default();
    let res = flux::kustomization_resource();
    let kustomizations = applying_kustomizations(env, rel);
    let waiting = |reason: &'static str, message: String| Report {
        summary: Summary::Progressing { reason, message },
        requeue: Duration::from_secs(10),
    };
    for ks in &kustomizations {
        let ns = ks.namespace.clone().unwrap_or_else(|| env_ns.clone());
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &res);
        let obj = match api.get_opt(&ks.name).await {
            Ok(Some(obj)) => FluxObject::from_dynamic(&obj),
            Ok(None) => {
                return Ok(waiting(
                    "FluxKustomizationNotFound",
                    format!(
                        "committed; Flux Kustomization {ns}/{} named by the Environment does not exist",
                        ks.name
                    ),
                ));
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Ok(waiting(
                    "FluxNotInstalled",
                    format!(
                        "committed; Flux Kustomizations are not installed in this cluster (Kustomization {ns}/{})",
                        ks.name
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if obj.suspended {
            return Ok(waiting(
                "FluxSuspended",
                format!(
                    "committed; Flux Kustomization {ns}/{} is suspended",
                    ks.name
                ),
            ));
        }
        let ready = obj.ready().cloned().unwrap_or_default();
        if ready.status == "True"
            && contains(ctx, repo, creds, commit, &obj.status.last_applied_revision).await?
        {
            continue;
        }
        if ready.status == "False"
            && contains(
                ctx,
                repo,
                creds,
                commit,
                &obj.status.last_attempted_revision,
            )
            .await?
        {
            st.phase = Phase::Failed;
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
            return Ok(Report {
                summary: Summary::Stalled {
                    reason: "FluxFailed",
                    message: format!(
                        "Flux Kustomization {ns}/{} failed ({}): {}",
                        ks.name, ready.reason, ready.message
                    ),
                },
                requeue: Duration::from_secs(60),
            });
        }
        return Ok(waiting(
            "WaitingForFlux",
            format!(
                "committed {}; waiting for Flux Kustomization {ns}/{} to apply it",
                &commit[..8.min(commit.len())],
                ks.name
            ),
        ));
    }
    st.phase = Phase::Ready;
    st.last_applied_version = Some(rel.spec.version.clone());
    set_condition(
        &mut st.conditions,
        condition(
            api::APPLIED,
            Status::True,
            "Applied",
            format!("Flux applied {}", flux::revision(&repo.branch, commit)),
            generation,
        ),
        now.clone(),
    );
    Ok(Report {
        summary: Summary::Ready {
            reason: "Applied",
            message: format!("version {} applied by Flux", rel.spec.version),
        },
        requeue: RESYNC,
    })
}

/// Whether a Flux revision contains `commit` (is it, or descends from it).
async fn contains(
    ctx: &Context,
    repo: &RepoKey,
    creds: &Credentials,
    commit: &str,
    revision: &Option<String>,
) -> Result<bool, Error> {
    let Some(applied) = revision.as_deref().and_then(flux::revision_commit) else {
        return Ok(false);
    };
    if applied == commit {
        return Ok(true);
    }
    Ok(ctx
        .writer
        .is_ancestor(repo.clone(), creds.clone(), commit, applied)
        .await?)
}

async fn write_status(
    ctx: &Context,
    rel: &Release,
    old: &ReleaseStatus,
    new: ReleaseStatus,
) -> Result<(), Error> {
    if let Some(event) = transition_event(&old.conditions, &new.conditions, "Reconcile")
        && let Err(e) = ctx.recorder.publish(&event, &rel.object_ref(&())).await
    {
        warn!(error = %e, "could not publish event");
    }
    if *old == new {
        return Ok(());
    }
    let (api_version, kind) = type_meta::<Release>();
    let body = json!({"apiVersion": api_version, "kind": kind, "status": new});
    ctx.releases_api(&rel.namespace().unwrap_or_default())
        .patch_status(
            &rel.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}

/// Deletion: remove the app folder from git (when this Release wrote it), then let go.
async fn cleanup(rel: Arc<Release>, ctx: &Context) -> Result<Action, Error> {
    let ns = rel.namespace().unwrap_or_default();
    let this = format!("{ns}/{}", rel.name_any());
    let Some(env) = ctx
        .environments_api(&ns)
        .get_opt(&rel.spec.environment)
        .await?
    else {
        let event = kube::runtime::events::Event {
            type_: kube::runtime::events::EventType::Warning,
            reason: "EnvironmentGone".into(),
            note: Some(format!(
                "Environment {} no longer exists; the app folder {} stays in git",
                rel.spec.environment, rel.spec.app
            )),
            action: "Delete".into(),
            secondary: None,
        };
        let _ = ctx.recorder.publish(&event, &rel.object_ref(&())).await;
        return Ok(Action::await_change());
    };
    let creds = credentials(ctx, &env).await?;
    let repo = RepoKey {
        url: env.spec.repository.url.clone(),
        branch: env.spec.repository.branch.clone(),
    };
    let files = ctx
        .writer
        .read_app(
            repo.clone(),
            creds.clone(),
            &env.spec.repository.path,
            &rel.spec.app,
        )
        .await?;
    let owned = files
        .as_ref()
        .and_then(|f| f.get(".tumbler/release.yaml"))
        .and_then(|b| owner_of(b))
        .is_some_and(|o| o == this);
    if owned {
        let author = env.author();
        let change = Change {
            release: this,
            generation: rel.metadata.generation.unwrap_or_default(),
            version: rel.spec.version.clone(),
            environment: env.name_any(),
            env_path: env.spec.repository.path.clone(),
            app: rel.spec.app.clone(),
            files: None,
            entry: None,
            author: Author {
                name: author.name,
                email: author.email,
            },
            kind: ChangeKind::Delete,
        };
        let outcome = ctx.writer.submit(repo, creds, change).await?;
        info!(?outcome, "removed app folder");
    }
    Ok(Action::await_change())
}
