//! Rollback requests: the `tumbler.dev/rollback-to` annotation. `tumbler rollback` sets it,
//! so that a developer who may only get and patch Releases can roll back without reading
//! the Environment's Secret or reaching git. The controller resolves it with its own
//! credentials: it finds the version (or commit prefix) among this Release's commits of the
//! app folder, reads the `.tumbler/release.yaml` of that commit, and applies its spec as
//! `tumbler rollback` used to (field manager `tumbler-rollback`, the
//! `tumbler.dev/rollback: <from> -> <to>` annotation), removing the request in the same
//! patch. The outcome is the `RolledBack` condition and an Event; a request that cannot be
//! met (not in the log, no spec there) is removed too, so it is not retried forever; a
//! transient failure (git unreachable) keeps it and is retried with backoff.
//!
//! A pending request is resolved before anything else of the reconcile: the spec it writes
//! is what the next reconcile commits.

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::api::{
    self, ROLLBACK_ANNOTATION, ROLLBACK_CONDITION, ROLLBACK_MANAGER, ROLLBACK_TO_ANNOTATION,
    Release, Status,
};
use crate::gitops::{Author, LogEntry};

use super::super::Error;
use super::super::context::Context;
use super::super::reason::Reason;
use super::super::status::{event, key, now, publish, write_status};
use super::decide::{Target, admission};
use super::observe;

/// Why a request was not met.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(
        "no commit of Release {release} (app {app:?}) in Environment {environment} has version or commit {to:?}; `tumbler log {name}` lists its versions"
    )]
    NotFound {
        release: String,
        name: String,
        app: String,
        environment: String,
        to: String,
    },
    #[error("commit {commit} has no usable {path}: {why}")]
    NoSpec {
        commit: String,
        path: String,
        why: String,
    },
    #[error(transparent)]
    Reconcile(#[from] Error),
}

impl RollbackError {
    pub fn reason(&self) -> Reason {
        match self {
            RollbackError::NotFound { .. } => Reason::RollbackNotFound,
            RollbackError::NoSpec { .. } => Reason::RollbackFailed,
            RollbackError::Reconcile(e) => e.reason(),
        }
    }

    /// Whether asking again cannot help: the request is then removed.
    pub fn is_terminal(&self) -> bool {
        match self {
            RollbackError::NotFound { .. } | RollbackError::NoSpec { .. } => true,
            RollbackError::Reconcile(e) => e.is_terminal(),
        }
    }
}

/// The newest commit of this Release in the log (newest first) that has version `to` or
/// whose id starts with `to` (7 characters at least); deletions do not count.
pub fn find<'a>(entries: &'a [LogEntry], release: &str, to: &str) -> Option<&'a LogEntry> {
    entries.iter().filter(|e| e.action != "delete").find(|e| {
        e.release == release && (e.version == to || (to.len() >= 7 && e.commit.starts_with(to)))
    })
}

/// A rollback restores what was released (version, artifact, configuration), not how
/// Tumbler handles the Release now: `suspend` and `expiry` are never recorded in
/// `.tumbler/release.yaml`, and a follower keeps following (`follow`; the rollback
/// annotation holds its automatic promotion instead). The current values win.
pub fn keep_handling(spec: &mut Value, rel: &Release) {
    let Some(fields) = spec.as_object_mut() else {
        return;
    };
    for key in ["suspend", "expiry", "follow"] {
        fields.remove(key);
    }
    if rel.spec.suspend {
        fields.insert("suspend".into(), json!(true));
    }
    if let Some(expiry) = &rel.spec.expiry {
        fields.insert("expiry".into(), json!(expiry));
    }
    if let Some(follow) = &rel.spec.follow {
        fields.insert("follow".into(), json!(follow));
    }
}

/// The spec and version in a `.tumbler/release.yaml`.
pub fn old_spec(bytes: &[u8]) -> Result<(Value, String), String> {
    let old: Value = serde_saphyr::from_slice(bytes).map_err(|e| e.to_string())?;
    let spec = old
        .get("spec")
        .filter(|s| s.is_object())
        .cloned()
        .ok_or("it has no spec")?;
    let version = spec
        .get("version")
        .and_then(Value::as_str)
        .ok_or("its spec has no version")?
        .to_string();
    Ok((spec, version))
}

fn pointer(annotation: &str) -> String {
    format!("/metadata/annotations/{}", annotation.replace('/', "~1"))
}

/// The JSON patch that applies `spec` (when given) and removes the request `raw`, only if
/// the request is still `raw` (a newer request wins).
pub fn patch(raw: &str, applied: Option<(&Value, String)>) -> Value {
    let mut ops = vec![
        json!({"op": "test", "path": pointer(ROLLBACK_TO_ANNOTATION), "value": raw}),
        json!({"op": "remove", "path": pointer(ROLLBACK_TO_ANNOTATION)}),
    ];
    if let Some((spec, from_to)) = applied {
        ops.push(json!({"op": "replace", "path": "/spec", "value": spec}));
        ops.push(json!({"op": "add", "path": pointer(ROLLBACK_ANNOTATION), "value": from_to}));
    }
    Value::Array(ops)
}

/// Resolves the pending request of `rel`.
pub async fn resolve(ctx: &Context, rel: &Release) -> Result<Action, Error> {
    let raw = rel
        .annotations()
        .get(ROLLBACK_TO_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let to = raw.trim().to_string();
    let outcome = find_spec(ctx, rel, &to).await;
    let generation = rel.meta().generation;
    match outcome {
        Ok((mut spec, version, commit)) => {
            keep_handling(&mut spec, rel);
            let message = format!(
                "rolled back from {} to {version} (spec of commit {}), as {ROLLBACK_TO_ANNOTATION}: {to} asked",
                rel.spec.version,
                &commit[..8.min(commit.len())]
            );
            // The condition first: the spec patch's own watch event then carries it.
            set_outcome(
                ctx,
                rel,
                Status::True,
                Reason::RolledBack,
                &message,
                generation,
            )
            .await?;
            let from_to = format!("{} -> {version}", rel.spec.version);
            match apply_patch(ctx, rel, patch(&raw, Some((&spec, from_to)))).await {
                Ok(()) => {
                    info!(%to, %version, %commit, "rolled back");
                    publish(ctx, rel, event(Reason::RolledBack, message, "Rollback")).await;
                    Ok(Action::requeue(std::time::Duration::from_secs(1)))
                }
                Err(e) => {
                    // E.g. the old spec names another app (immutable), or the request
                    // changed meanwhile: the request stays when it changed, else it goes.
                    let message =
                        format!("the spec of version {version} could not be applied: {e}");
                    warn!(%to, error = %e, "rollback patch refused");
                    set_outcome(
                        ctx,
                        rel,
                        Status::False,
                        Reason::RollbackFailed,
                        &message,
                        generation,
                    )
                    .await?;
                    publish(ctx, rel, event(Reason::RollbackFailed, message, "Rollback")).await;
                    let _ = apply_patch(ctx, rel, patch(&raw, None)).await;
                    Ok(Action::requeue(std::time::Duration::from_secs(1)))
                }
            }
        }
        Err(e) => {
            let message = format!("rollback to {to:?}: {e}");
            warn!(%to, reason = %e.reason(), error = %e, "rollback request not met");
            set_outcome(ctx, rel, Status::False, e.reason(), &message, generation).await?;
            publish(ctx, rel, event(e.reason(), message, "Rollback")).await;
            if e.is_terminal() {
                apply_patch(ctx, rel, patch(&raw, None)).await?;
                Ok(Action::requeue(std::time::Duration::from_secs(1)))
            } else {
                Ok(Action::requeue(ctx.backoff(&key(rel))))
            }
        }
    }
}

/// The spec, version and commit the request names, read with the Environment's credentials
/// once the Environment admits the Release.
async fn find_spec(
    ctx: &Context,
    rel: &Release,
    to: &str,
) -> Result<(Value, String, String), RollbackError> {
    let (env_ns, env_name) = rel.environment_key();
    let env = ctx
        .environment(&env_ns, &env_name)
        .await
        .map_err(Error::Kube)?
        .ok_or_else(|| Error::EnvironmentNotFound {
            namespace: env_ns.clone(),
            name: env_name.clone(),
        })?;
    let labels = if admission::needs_namespace_labels(rel, &env) {
        Some(observe::namespace_labels(ctx, rel).await?)
    } else {
        None
    };
    if let Some(refused) = admission::refusal(rel, &env, labels.as_ref()) {
        return Err(refused.into());
    }
    let creds = observe::credentials(ctx, &env).await?;
    let target = Target::of(&env);
    let author = env.author();
    let committer = Author {
        name: author.name,
        email: author.email,
    };
    let entries = ctx
        .writer
        .log(
            target.repo.clone(),
            creds.clone(),
            &target.path,
            Some(&rel.spec.app),
            10_000,
            Some(&committer),
        )
        .await
        .map_err(Error::Git)?;
    let release = format!("{}/{}", rel.namespace().unwrap_or_default(), rel.name_any());
    let entry = find(&entries, &release, to).ok_or_else(|| RollbackError::NotFound {
        release: release.clone(),
        name: rel.name_any(),
        app: rel.spec.app.clone(),
        environment: format!("{env_ns}/{env_name}"),
        to: to.to_string(),
    })?;
    let path = format!("{}/{}/.tumbler/release.yaml", target.path, rel.spec.app);
    let no_spec = |why: String| RollbackError::NoSpec {
        commit: entry.commit[..8.min(entry.commit.len())].to_string(),
        path: path.clone(),
        why,
    };
    let bytes = ctx
        .writer
        .file_at(target.repo, creds, &entry.commit, &path)
        .await
        .map_err(Error::Git)?
        .ok_or_else(|| no_spec("not in that commit".into()))?;
    let (spec, version) = old_spec(&bytes).map_err(no_spec)?;
    Ok((spec, version, entry.commit.clone()))
}

async fn apply_patch(ctx: &Context, rel: &Release, ops: Value) -> Result<(), Error> {
    let ops: json_patch::Patch =
        serde_json::from_value(ops).map_err(|e| Error::Internal(e.to_string()))?;
    let api: Api<Release> =
        Api::namespaced(ctx.client.clone(), &rel.namespace().unwrap_or_default());
    api.patch(
        &rel.name_any(),
        &PatchParams {
            field_manager: Some(ROLLBACK_MANAGER.into()),
            ..PatchParams::default()
        },
        &Patch::<()>::Json(ops),
    )
    .await?;
    Ok(())
}

/// Writes the `RolledBack` condition, keeping the rest of the status.
async fn set_outcome(
    ctx: &Context,
    rel: &Release,
    status: Status,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) -> Result<(), Error> {
    let old = rel.status.clone().unwrap_or_default();
    let mut new = old.clone();
    api::set_condition(
        &mut new.conditions,
        api::condition(
            ROLLBACK_CONDITION,
            status,
            reason.as_str(),
            message,
            generation,
        ),
        now(),
    );
    write_status(ctx, rel, &old, &old.conditions, &new, &new.conditions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(commit: &str, version: &str, release: &str, action: &str) -> LogEntry {
        LogEntry {
            commit: commit.into(),
            time: 0,
            author: String::new(),
            app: "api".into(),
            environment: "staging".into(),
            path: "envs/staging".into(),
            version: version.into(),
            release: release.into(),
            generation: 1,
            action: action.into(),
            requested_by: String::new(),
            summary: String::new(),
            promoted_from: String::new(),
        }
    }

    #[test]
    fn requests_find_this_releases_commits_by_version_or_commit_prefix() {
        let log = [
            entry("c3c3c3c3c3", "3", "team/api", "delete"),
            entry("b2b2b2b2b2", "2", "other/api", "release"),
            entry("a2a2a2a2a2", "2", "team/api", "release"),
            entry("a1a1a1a1a1", "1", "team/api", "release"),
        ];
        assert_eq!(find(&log, "team/api", "2").unwrap().commit, "a2a2a2a2a2");
        assert_eq!(find(&log, "team/api", "a1a1a1a").unwrap().version, "1");
        // Too short a prefix, another Release's commit, a deletion: not found.
        assert!(find(&log, "team/api", "a1a1").is_none());
        assert!(find(&log, "team/api", "b2b2b2b").is_none());
        assert!(find(&log, "team/api", "3").is_none());
    }

    #[test]
    fn a_rollback_keeps_how_the_release_is_handled_now() {
        let mut rel = Release::new("api", Default::default());
        rel.spec.suspend = true;
        rel.spec.expiry = Some(crate::api::Expiry {
            after: "2h".into(),
            ..Default::default()
        });
        let mut old = json!({"version": "1.0.0", "suspend": false,
            "follow": {"release": {"name": "old-upstream"}}});
        keep_handling(&mut old, &rel);
        assert_eq!(old["version"], "1.0.0");
        assert_eq!(old["suspend"], true);
        assert_eq!(old["expiry"]["after"], "2h");
        // The Release follows nothing now, so the old record's follow goes too.
        assert!(old.get("follow").is_none());
    }

    #[test]
    fn the_patch_removes_only_the_request_it_resolved() {
        let ops = patch("1.0.0", None);
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(
            ops[0]["path"],
            "/metadata/annotations/tumbler.dev~1rollback-to"
        );
        assert_eq!(ops[0]["value"], "1.0.0");
        assert_eq!(ops.as_array().unwrap().len(), 2);
        let spec = json!({"version": "1.0.0"});
        let ops = patch("1.0.0", Some((&spec, "2.0.0 -> 1.0.0".into())));
        assert_eq!(ops[2]["value"], spec);
        assert_eq!(
            ops[3]["path"],
            "/metadata/annotations/tumbler.dev~1rollback"
        );
        // The patch applies to a Release carrying the request, and only to it.
        let mut rel = json!({"metadata": {"annotations": {ROLLBACK_TO_ANNOTATION: "1.0.0"}},
            "spec": {"version": "2.0.0"}});
        let p: json_patch::Patch = serde_json::from_value(ops.clone()).unwrap();
        json_patch::patch(&mut rel, &p).unwrap();
        assert_eq!(rel["spec"]["version"], "1.0.0");
        assert_eq!(
            rel["metadata"]["annotations"],
            json!({ROLLBACK_ANNOTATION: "2.0.0 -> 1.0.0"})
        );
        let mut newer =
            json!({"metadata": {"annotations": {ROLLBACK_TO_ANNOTATION: "0.9"}}, "spec": {}});
        assert!(json_patch::patch(&mut newer, &p).is_err());
    }

    #[test]
    fn old_specs_need_a_spec_with_a_version() {
        let (spec, v) =
            old_spec(b"apiVersion: tumbler.dev/v1alpha1\nspec: {version: '1.0', app: api}\n")
                .unwrap();
        assert_eq!((spec["app"].as_str(), v.as_str()), (Some("api"), "1.0"));
        assert!(old_spec(b"kind: Release\n").is_err());
        assert!(old_spec(b"spec: {app: api}\n").is_err());
        assert!(old_spec(b": [").is_err());
    }
}
