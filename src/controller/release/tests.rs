//! decide, as a table: observed situation → plan → status, with the kstatus invariants
//! checked on every status. No cluster, no git.

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

fn at(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).unwrap())
}

fn release(name: &str, generation: i64) -> Release {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name, "namespace": "team", "generation": generation, "uid": format!("uid-{name}")},
        "spec": {"environment": "staging", "app": "api", "version": "1.2.3",
            "template": {"image": {"repository": "ghcr.io/acme/api", "tag": "1.2.3"}}},
    }))
    .unwrap()
}

fn environment(extra: serde_json::Value) -> Environment {
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

fn flux_env() -> Environment {
    environment(
        serde_json::json!({"flux": {"kustomizations": [{"name": "apps", "namespace": "flux-system"}]}}),
    )
}

fn observed(
    rel: &Release,
    env: Environment,
    folder: Option<Option<BTreeMap<String, Vec<u8>>>>,
) -> Observed {
    let rendered = render::render(rel, &env).map_err(Error::from);
    Observed {
        env: Ok(env),
        claimants: vec![rel.metadata.name.clone().unwrap()],
        rendered: Some(rendered),
        git: Some(Ok(GitFacts {
            creds: Credentials::None,
            folder,
        })),
    }
}

/// A folder whose `.tumbler/release.yaml` names `owner` (`namespace/name`).
fn folder_of(owner: &str) -> Option<Option<BTreeMap<String, Vec<u8>>>> {
    let (ns, name) = owner.split_once('/').unwrap();
    Some(Some(BTreeMap::from([(
        ".tumbler/release.yaml".to_string(),
        format!("metadata:\n  name: {name}\n  namespace: {ns}\n").into_bytes(),
    )])))
}

/// The status decided when the plan stops (or fails) before git.
fn stopped_status(rel: &Release, obs: &Observed) -> Decision {
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
fn check(rel: &Release, d: &Decision) {
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
        _ => assert_eq!(ready.status, "False"),
    }
}

fn cond<'a>(
    d: &'a Decision,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    api::find_condition(&d.status.conditions, type_)
}

fn is_stalled(d: &Decision) -> bool {
    cond(d, api::STALLED).is_some_and(|c| c.status == "True")
}

fn kube_error(code: u16) -> Error {
    Error::Kube(kube::Error::Api(Box::new(kube::core::Status {
        code,
        message: "etcdserver: request timed out".into(),
        ..Default::default()
    })))
}

#[test]
fn stops_before_git_map_to_reasons_phases_and_stalled() {
    let rel = release("api", 1);
    // (situation, observed, reason, stalled, phase)
    let mut cases: Vec<(&str, Observed, Reason, bool, Phase)> = vec![];
    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.env = Err(Error::EnvironmentNotFound {
        namespace: "team".into(),
        name: "staging".into(),
    });
    obs.rendered = None;
    obs.git = None;
    cases.push((
        "no environment",
        obs,
        Reason::EnvironmentNotFound,
        true,
        Phase::Failed,
    ));

    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.env = Err(kube_error(500));
    obs.rendered = None;
    obs.git = None;
    cases.push((
        "API error",
        obs,
        Reason::KubernetesError,
        false,
        Phase::Pending,
    ));

    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.git = Some(Err(Error::Credentials(CredentialsError::SecretNotFound {
        namespace: "team".into(),
        name: "git".into(),
    })));
    cases.push((
        "no secret",
        obs,
        Reason::SecretNotFound,
        true,
        Phase::Failed,
    ));

    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.git = Some(Err(Error::Git(GitError::RepositoryUnreachable {
        url: "https://git.example/gitops.git".into(),
        message: "connection refused".into(),
    })));
    cases.push((
        "git down",
        obs,
        Reason::RepositoryUnreachable,
        false,
        Phase::Pending,
    ));

    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.git = Some(Err(Error::Git(GitError::AuthenticationFailed {
        url: "https://git.example/gitops.git".into(),
    })));
    cases.push((
        "bad token",
        obs,
        Reason::AuthenticationFailed,
        true,
        Phase::Failed,
    ));

    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.rendered = Some(Err(Error::Render(RenderError::NoSource)));
    obs.git = None;
    cases.push(("two sources", obs, Reason::NoSource, true, Phase::Failed));

    let obs = observed(
        &rel,
        environment(serde_json::json!({"suspend": true})),
        None,
    );
    cases.push((
        "suspended",
        obs,
        Reason::EnvironmentSuspended,
        false,
        Phase::Pending,
    ));

    let obs = observed(
        &rel,
        environment(serde_json::json!({})),
        folder_of("other-team/api"),
    );
    cases.push((
        "folder of another team",
        obs,
        Reason::AppConflict,
        true,
        Phase::Failed,
    ));

    for (what, obs, reason, stalled, phase) in cases {
        let d = stopped_status(&rel, &obs);
        assert_eq!(d.summary.reason(), reason, "{what}");
        assert_eq!(is_stalled(&d), stalled, "{what}");
        assert_eq!(d.status.phase, phase, "{what}");
        let want = if stalled { Requeue::Backoff } else { d.requeue };
        assert_eq!(d.requeue, want, "{what}");
        assert!(d.status.commit.is_none(), "{what}: nothing was written");
    }
}

#[test]
fn a_render_error_shows_on_rendered_and_a_good_render_too() {
    let rel = release("api", 1);
    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.rendered = Some(Err(Error::Render(RenderError::NoSource)));
    let d = stopped_status(&rel, &obs);
    let rendered = cond(&d, api::RENDERED).unwrap();
    assert_eq!(
        (rendered.status.as_str(), rendered.reason.as_str()),
        ("False", "NoSource")
    );

    let obs = observed(
        &rel,
        environment(serde_json::json!({"suspend": true})),
        None,
    );
    let d = stopped_status(&rel, &obs);
    assert_eq!(cond(&d, api::RENDERED).unwrap().status, "True");
}

#[test]
fn a_transient_error_keeps_the_phase_of_the_same_generation() {
    let mut rel = release("api", 3);
    rel.status = Some(ReleaseStatus {
        phase: Phase::Ready,
        observed_generation: Some(3),
        ..Default::default()
    });
    let mut obs = observed(&rel, environment(serde_json::json!({})), None);
    obs.git = Some(Err(Error::Git(GitError::RepositoryUnreachable {
        url: "u".into(),
        message: "m".into(),
    })));
    assert_eq!(stopped_status(&rel, &obs).status.phase, Phase::Ready);
    rel.metadata.generation = Some(4);
    assert_eq!(stopped_status(&rel, &obs).status.phase, Phase::Pending);
}

#[test]
fn claimants_agree_on_one_owner_even_when_created_in_the_same_second() {
    let first = release("a-first", 1);
    let second = release("b-second", 1);
    let both = vec!["a-first".to_string(), "b-second".to_string()];
    let env = || environment(serde_json::json!({}));
    // Nothing in git: the cluster's order decides, for both.
    let mut obs = observed(&second, env(), Some(None));
    obs.claimants = both.clone();
    let d = stopped_status(&second, &obs);
    assert_eq!(d.summary.reason(), Reason::AppConflict);
    assert!(d.summary.message().contains("team/a-first"));
    let mut obs = observed(&first, env(), Some(None));
    obs.claimants = both.clone();
    assert!(matches!(plan(&first, &obs), Plan::Submit { .. }));
    // The second one wrote first (the race the cluster cannot see): git decides, for both.
    let mut obs = observed(&second, env(), folder_of("team/b-second"));
    obs.claimants = both.clone();
    assert!(matches!(plan(&second, &obs), Plan::Submit { .. }));
    let mut obs = observed(&first, env(), folder_of("team/b-second"));
    obs.claimants = both.clone();
    let d = stopped_status(&first, &obs);
    assert_eq!(d.summary.reason(), Reason::AppConflict);
    assert!(d.summary.message().contains("team/b-second"));
    // A recorded owner that no longer claims the app: the cluster's order again.
    let mut obs = observed(&first, env(), folder_of("team/deleted"));
    obs.claimants = both;
    assert!(matches!(plan(&first, &obs), Plan::Submit { .. }));
}

#[test]
fn a_first_write_submits_the_rendered_folder_with_its_trailers() {
    let mut rel = release("api", 2);
    rel.metadata.annotations = Some(BTreeMap::from([(
        api::ROLLBACK_ANNOTATION.to_string(),
        "1.3.0 -> 1.2.3".to_string(),
    )]));
    let obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    let Plan::Submit { change, .. } = plan(&rel, &obs) else {
        panic!("expected a submit");
    };
    assert_eq!(change.release, "team/api");
    assert_eq!(change.generation, 2);
    assert_eq!(change.env_path, "envs/staging");
    assert_eq!(change.app, "api");
    assert_eq!(
        change.kind,
        ChangeKind::Rollback {
            from: "1.3.0".into()
        }
    );
    assert!(
        change
            .files
            .as_ref()
            .unwrap()
            .contains_key(".tumbler/release.yaml")
    );
}

/// A Release whose generation 1 is in git at the current target.
fn written_release(env: &Environment) -> Release {
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

#[test]
fn a_written_generation_is_compared_not_written_again_unless_the_target_moved() {
    let env = environment(serde_json::json!({}));
    let rel = written_release(&env);
    let files = render::render(&rel, &env).unwrap().files;
    let mut edited = files.clone();
    edited.insert("deployment-api.yaml".into(), b"edited by hand".to_vec());
    edited.insert("extra.yaml".into(), b"x".to_vec());
    for (folder, drift) in [
        (files, vec![]),
        (
            edited,
            vec!["deployment-api.yaml".to_string(), "extra.yaml".to_string()],
        ),
    ] {
        let obs = observed(&rel, env.clone(), Some(Some(folder)));
        let Plan::Compare { written } = plan(&rel, &obs) else {
            panic!("expected a compare");
        };
        assert_eq!(written.drift.as_ref(), Some(&drift));
        assert!(!written.pushed);
        let d = status(&Facts {
            release: &rel,
            now: at(2000),
            rendered: obs.rendered.as_ref(),
            progress: Progress::InGit(written, Box::new(Ok(Cluster::default()))),
        });
        check(&rel, &d);
        let drifted = cond(&d, api::DRIFTED).unwrap();
        assert_eq!(
            drifted.status,
            if drift.is_empty() { "False" } else { "True" }
        );
        assert_eq!(d.note, None);
    }
    // The Environment now points at another folder: this generation is written there.
    let moved = environment(
        serde_json::json!({"repository": {"url": "https://git.example/gitops.git", "branch": "main", "path": "clusters/eu/staging"}}),
    );
    let obs = observed(&rel, moved, Some(None));
    let Plan::Submit {
        change,
        env,
        rendered,
        git,
    } = plan(&rel, &obs)
    else {
        panic!("expected a submit to the new target");
    };
    assert_eq!(change.env_path, "clusters/eu/staging");
    assert!(needs_folder(&rel, rendered, &Target::of(env), 1));
    let written = Written {
        env,
        rendered,
        creds: &git.creds,
        target: Target::of(env),
        commit: "ab".repeat(20),
        pushed: true,
        drift: None,
    };
    let d = status(&Facts {
        release: &rel,
        now: at(2000),
        rendered: obs.rendered.as_ref(),
        progress: Progress::InGit(written, Box::new(Ok(Cluster::default()))),
    });
    check(&rel, &d);
    assert_eq!(d.note.as_ref().map(|n| n.0), Some(Reason::Repointed));
    assert!(
        d.status
            .target
            .as_deref()
            .unwrap()
            .ends_with("clusters/eu/staging")
    );
}

fn ready(status: &str, reason: &str) -> Option<FluxCondition> {
    Some(FluxCondition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message: format!("flux says {reason}"),
        observed_generation: None,
    })
}

fn ks(state: KustomizationState) -> Cluster {
    Cluster {
        kustomizations: vec![Kustomization {
            name: "flux-system/apps".into(),
            state,
        }],
        ..Default::default()
    }
}

fn found(status: &str, applied: bool, attempted: bool) -> KustomizationState {
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

fn deployment(desired: i32, ready: i32, pods: Vec<(bool, String)>) -> Deployment {
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

/// The status decided after a push, with this cluster.
fn after_push(env: &Environment, cluster: Result<Cluster, Error>) -> (Release, Decision) {
    let rel = release("api", 1);
    let obs = observed(&rel, env.clone(), Some(None));
    let Plan::Submit {
        env, rendered, git, ..
    } = plan(&rel, &obs)
    else {
        panic!("expected a submit");
    };
    let written = Written {
        env,
        rendered,
        creds: &git.creds,
        target: Target::of(env),
        commit: "12345678".repeat(5),
        pushed: true,
        drift: None,
    };
    let d = status(&Facts {
        release: &rel,
        now: at(3000),
        rendered: obs.rendered.as_ref(),
        progress: Progress::InGit(written, Box::new(cluster)),
    });
    check(&rel, &d);
    assert_eq!(
        d.status.commit.as_deref(),
        Some("12345678".repeat(5).as_str())
    );
    assert_eq!(cond(&d, api::COMMITTED).unwrap().reason, "Pushed");
    (rel, d)
}

#[test]
fn what_flux_and_the_workloads_did_decides_phase_and_ready() {
    let done = || Some(vec![deployment(2, 2, vec![])]);
    let applied = |deployments, helm| Cluster {
        deployments,
        helm,
        ..ks(found("True", true, true))
    };
    // (situation, environment, cluster, phase, reason, stalled, requeue)
    let cases: Vec<(&str, Environment, Cluster, Phase, Reason, bool, Requeue)> = vec![
        (
            "no Flux",
            environment(serde_json::json!({})),
            Cluster::default(),
            Phase::Committed,
            Reason::Committed,
            false,
            Requeue::After(Duration::from_secs(600)),
        ),
        (
            "no Kustomization",
            flux_env(),
            ks(KustomizationState::NotFound),
            Phase::Committed,
            Reason::FluxKustomizationNotFound,
            false,
            Requeue::After(Duration::from_secs(10)),
        ),
        (
            "no Flux CRDs",
            flux_env(),
            ks(KustomizationState::NotInstalled),
            Phase::Committed,
            Reason::FluxNotInstalled,
            false,
            Requeue::After(Duration::from_secs(10)),
        ),
        (
            "suspended",
            flux_env(),
            ks(KustomizationState::Found {
                suspended: true,
                ready: ready("True", "x"),
                applied: true,
                attempted: true,
            }),
            Phase::Committed,
            Reason::FluxSuspended,
            false,
            Requeue::After(Duration::from_secs(10)),
        ),
        (
            "not applied yet",
            flux_env(),
            ks(found("True", false, false)),
            Phase::Committed,
            Reason::WaitingForFlux,
            false,
            Requeue::After(Duration::from_secs(10)),
        ),
        (
            "failed on an older commit",
            flux_env(),
            ks(found("False", false, false)),
            Phase::Committed,
            Reason::WaitingForFlux,
            false,
            Requeue::After(Duration::from_secs(10)),
        ),
        (
            "failed on this commit",
            flux_env(),
            ks(found("False", false, true)),
            Phase::Failed,
            Reason::FluxFailed,
            true,
            Requeue::After(Duration::from_secs(60)),
        ),
        (
            "applied and running",
            flux_env(),
            applied(done(), None),
            Phase::Ready,
            Reason::Applied,
            false,
            Requeue::After(Duration::from_secs(600)),
        ),
        (
            "rolling out",
            flux_env(),
            applied(Some(vec![deployment(2, 1, vec![])]), None),
            Phase::Applied,
            Reason::RollingOut,
            false,
            Requeue::After(Duration::from_secs(3)),
        ),
        (
            "unschedulable",
            flux_env(),
            applied(
                Some(vec![deployment(
                    2,
                    1,
                    vec![(false, "pod p: 0/1 nodes".into())],
                )]),
                None,
            ),
            Phase::Applied,
            Reason::RollingOut,
            false,
            Requeue::After(Duration::from_secs(3)),
        ),
        (
            "crash loop",
            flux_env(),
            applied(
                Some(vec![deployment(
                    2,
                    1,
                    vec![(true, "pod p container api: CrashLoopBackOff".into())],
                )]),
                None,
            ),
            Phase::Failed,
            Reason::RolloutStuck,
            true,
            Requeue::After(Duration::from_secs(15)),
        ),
        (
            "no HelmRelease yet",
            flux_env(),
            applied(
                done(),
                Some(HelmRelease::Missing {
                    name: "api/api".into(),
                }),
            ),
            Phase::Applied,
            Reason::WaitingForHelmRelease,
            false,
            Requeue::After(Duration::from_secs(3)),
        ),
        (
            "HelmRelease failed",
            flux_env(),
            applied(
                done(),
                Some(HelmRelease::Found {
                    name: "api/api".into(),
                    current: true,
                    ready: ready("False", "InstallFailed"),
                }),
            ),
            Phase::Failed,
            Reason::HelmReleaseFailed,
            true,
            Requeue::After(Duration::from_secs(30)),
        ),
        (
            "HelmRelease behind",
            flux_env(),
            applied(
                done(),
                Some(HelmRelease::Found {
                    name: "api/api".into(),
                    current: false,
                    ready: ready("False", "InstallFailed"),
                }),
            ),
            Phase::Applied,
            Reason::WaitingForHelmRelease,
            false,
            Requeue::After(Duration::from_secs(3)),
        ),
        (
            "HelmRelease ready",
            flux_env(),
            applied(
                done(),
                Some(HelmRelease::Found {
                    name: "api/api".into(),
                    current: true,
                    ready: ready("True", "InstallSucceeded"),
                }),
            ),
            Phase::Ready,
            Reason::Applied,
            false,
            Requeue::After(Duration::from_secs(600)),
        ),
    ];
    for (what, env, cluster, phase, reason, stalled, requeue) in cases {
        let (_, d) = after_push(&env, Ok(cluster));
        assert_eq!(d.status.phase, phase, "{what}");
        assert_eq!(d.summary.reason(), reason, "{what}");
        assert_eq!(is_stalled(&d), stalled, "{what}");
        assert_eq!(d.requeue, requeue, "{what}");
        let in_history = d
            .status
            .history
            .first()
            .is_some_and(|h| h.version == "1.2.3");
        assert_eq!(
            in_history,
            matches!(reason, Reason::Applied | Reason::Committed),
            "{what}: history"
        );
        if reason == Reason::FluxFailed {
            let applied = cond(&d, api::APPLIED).unwrap();
            assert_eq!(
                (applied.status.as_str(), applied.reason.as_str()),
                ("False", "HealthCheckFailed")
            );
        }
        if phase == Phase::Ready {
            assert_eq!(d.status.last_applied_version.as_deref(), Some("1.2.3"));
            assert_eq!(cond(&d, api::APPLIED).unwrap().status, "True");
        }
    }
}

#[test]
fn a_failed_cluster_read_still_records_the_commit() {
    let (_, d) = after_push(&flux_env(), Err(kube_error(503)));
    assert_eq!(d.summary.reason(), Reason::KubernetesError);
    assert_eq!(d.status.phase, Phase::Committed);
    assert_eq!(d.requeue, Requeue::Backoff);
    assert!(d.summary.message().contains("committed 12345678"));
}

#[test]
fn a_change_git_refuses_fails_alone_with_its_reason() {
    let rel = release("api", 1);
    let obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    let stopped = Stopped::Failed(Fault::Found(Error::Git(GitError::InvalidPath {
        path: "envs/staging/api/x.git./y".into(),
        message: "git refuses this path".into(),
    })));
    let d = status(&Facts {
        release: &rel,
        now: at(1),
        rendered: obs.rendered.as_ref(),
        progress: Progress::Stopped(stopped),
    });
    check(&rel, &d);
    assert_eq!(d.summary.reason(), Reason::InvalidPath);
    assert!(is_stalled(&d));
    assert_eq!(d.status.phase, Phase::Failed);
}

fn deleting(
    env: Result<Option<Environment>, Error>,
    git: Option<Result<(Credentials, Option<String>), Error>>,
) -> Deleting {
    Deleting { env, git }
}

#[test]
fn deletion_removes_its_own_folder_and_never_hangs_on_what_is_gone() {
    let rel = release("api", 1);
    let env = || Ok(Some(environment(serde_json::json!({}))));
    let own = || Some(Ok((Credentials::None, Some("team/api".to_string()))));
    match deletion(&rel, deleting(env(), own())) {
        Deletion::Remove { change, target, .. } => {
            assert_eq!(change.kind, ChangeKind::Delete);
            assert!(change.files.is_none());
            assert_eq!(target.path, "envs/staging");
        }
        other => panic!("expected a removal, got {other:?}"),
    }
    assert!(matches!(
        deletion(
            &rel,
            deleting(
                env(),
                Some(Ok((Credentials::None, Some("other/api".into()))))
            )
        ),
        Deletion::LetGo(None)
    ));
    assert!(matches!(
        deletion(&rel, deleting(Ok(None), None)),
        Deletion::LetGo(Some((Reason::EnvironmentGone, _)))
    ));
    let secret_gone = Error::Credentials(CredentialsError::SecretNotFound {
        namespace: "team".into(),
        name: "git".into(),
    });
    assert!(matches!(
        deletion(&rel, deleting(env(), Some(Err(secret_gone)))),
        Deletion::LetGo(Some((Reason::FolderLeftInGit, _)))
    ));
    let down = Error::Git(GitError::RepositoryUnreachable {
        url: "u".into(),
        message: "m".into(),
    });
    assert!(matches!(
        deletion(&rel, deleting(env(), Some(Err(down)))),
        Deletion::Retry(_)
    ));
    assert!(matches!(
        deletion(&rel, deleting(Err(kube_error(500)), None)),
        Deletion::Retry(_)
    ));
}
