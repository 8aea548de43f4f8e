use super::*;

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
