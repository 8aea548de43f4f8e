use super::*;

/// One row: situation, environment, cluster, phase, reason, stalled, requeue seconds.
type Row = (&'static str, Environment, Cluster, Phase, Reason, bool, u64);

/// Decides each row after a push and checks what a person would read on the Release.
fn check_rows(rows: Vec<Row>) {
    for (what, env, cluster, phase, reason, stalled, secs) in rows {
        let (_, d) = after_push(&env, Ok(cluster));
        assert_eq!(d.status.phase, phase, "{what}");
        assert_eq!(d.summary.reason(), reason, "{what}");
        assert_eq!(is_stalled(&d), stalled, "{what}");
        assert_eq!(
            d.requeue,
            Requeue::After(Duration::from_secs(secs)),
            "{what}"
        );
        let history = d
            .status
            .history
            .first()
            .is_some_and(|h| h.version == "1.2.3");
        let settled = matches!(reason, Reason::Applied | Reason::NotVerified);
        assert_eq!(history, settled, "{what}: history");
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

/// Flux applied the commit, with these workloads and HelmRelease.
fn applied(deployments: Option<Vec<Deployment>>, helm: Option<HelmRelease>) -> Cluster {
    Cluster {
        deployments,
        helm,
        ..ks(found("True", true, true))
    }
}

fn running() -> Option<Vec<Deployment>> {
    Some(vec![deployment(2, 2, vec![])])
}

fn helm(current: bool, status: &str, reason: &str) -> Option<HelmRelease> {
    Some(HelmRelease::Found {
        name: "api/api".into(),
        current,
        ready: ready(status, reason),
    })
}

#[test]
#[rustfmt::skip]
fn what_flux_did_with_the_commit_decides_phase_and_ready() {
    let suspended = KustomizationState::Found { suspended: true, ready: ready("True", "x"), applied: true, attempted: true };
    check_rows(vec![
        ("no Flux", environment(serde_json::json!({})), Cluster::default(), Phase::Committed, Reason::NotVerified, false, 600),
        ("no Kustomization", flux_env(), ks(KustomizationState::NotFound), Phase::Committed, Reason::FluxKustomizationNotFound, false, 10),
        ("no Flux CRDs", flux_env(), ks(KustomizationState::NotInstalled), Phase::Committed, Reason::FluxNotInstalled, false, 10),
        ("suspended", flux_env(), ks(suspended), Phase::Committed, Reason::FluxSuspended, false, 10),
        ("not applied yet", flux_env(), ks(found("True", false, false)), Phase::Committed, Reason::WaitingForFlux, false, 10),
        ("failed on an older commit", flux_env(), ks(found("False", false, false)), Phase::Committed, Reason::WaitingForFlux, false, 10),
        ("failed on this commit", flux_env(), ks(found("False", false, true)), Phase::Failed, Reason::FluxFailed, true, 60),
        ("applied and running", flux_env(), applied(running(), None), Phase::Ready, Reason::Applied, false, 600),
    ]);
}

#[test]
#[rustfmt::skip]
fn what_the_workloads_did_decides_phase_and_ready() {
    let pods = |stuck: bool, text: &str| Some(vec![deployment(2, 1, vec![(stuck, text.to_string())])]);
    check_rows(vec![
        ("rolling out", flux_env(), applied(Some(vec![deployment(2, 1, vec![])]), None), Phase::Applied, Reason::RollingOut, false, 1),
        ("unschedulable", flux_env(), applied(pods(false, "pod p: 0/1 nodes"), None), Phase::Applied, Reason::RollingOut, false, 1),
        ("crash loop", flux_env(), applied(pods(true, "pod p container api: CrashLoopBackOff"), None), Phase::Failed, Reason::RolloutStuck, true, 15),
        ("no HelmRelease yet", flux_env(), applied(running(), Some(HelmRelease::Missing { name: "api/api".into() })), Phase::Applied, Reason::WaitingForHelmRelease, false, 1),
        ("HelmRelease failed", flux_env(), applied(running(), helm(true, "False", "InstallFailed")), Phase::Failed, Reason::HelmReleaseFailed, true, 30),
        ("HelmRelease waits for its chart", flux_env(), applied(running(), helm(true, "False", "SourceNotReady")), Phase::Applied, Reason::WaitingForHelmRelease, false, 1),
        ("HelmRelease waits for a dependency", flux_env(), applied(running(), helm(true, "False", "DependencyNotReady")), Phase::Applied, Reason::WaitingForHelmRelease, false, 1),
        ("HelmRelease behind", flux_env(), applied(running(), helm(false, "False", "InstallFailed")), Phase::Applied, Reason::WaitingForHelmRelease, false, 1),
        ("HelmRelease ready", flux_env(), applied(running(), helm(true, "True", "InstallSucceeded")), Phase::Ready, Reason::Applied, false, 600),
    ]);
}

/// Without a Flux object to read, Ready is never True: `kubectl wait --for=condition=Ready`
/// would otherwise pass on a guess. Nothing is in flight or stuck either, so kstatus calls
/// the Release Current; `Committed=True` is what waits for the commit.
#[test]
fn without_flux_ready_is_false_not_verified_and_committed_is_true() {
    let (_, d) = after_push(&environment(serde_json::json!({})), Ok(Cluster::default()));
    let ready = cond(&d, api::READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "NotVerified")
    );
    assert!(ready.message.contains("not verified"), "{}", ready.message);
    assert!(cond(&d, api::RECONCILING).is_none());
    assert!(cond(&d, api::STALLED).is_none());
    let committed = cond(&d, api::COMMITTED).unwrap();
    assert_eq!(
        (committed.status.as_str(), committed.reason.as_str()),
        ("True", "Pushed")
    );
    assert_eq!(d.status.phase, Phase::Committed);
}

#[test]
fn a_failed_cluster_read_still_records_the_commit() {
    let (_, d) = after_push(&flux_env(), Err(kube_error(503)));
    assert_eq!(d.summary.reason(), Reason::KubernetesError);
    assert_eq!(d.status.phase, Phase::Committed);
    assert_eq!(d.requeue, Requeue::Backoff);
    assert!(d.summary.message().contains("committed 12345678"));
}

/// The status decided when the Release was Ready on this very commit, and the cluster read
/// now gives `cluster`.
fn again_after_ready(cluster: Result<Cluster, Error>) -> Decision {
    let env = flux_env();
    let mut rel = release("api", 1);
    let commit = "12345678".repeat(5);
    rel.status = Some(ReleaseStatus {
        phase: Phase::Ready,
        observed_generation: Some(1),
        commit: Some(commit.clone()),
        ..Default::default()
    });
    decided_in_git(&rel, &env, commit, false, at(3000), cluster)
}

#[test]
fn an_unreachable_workload_cluster_leaves_the_release_waiting_never_ready_from_old_news() {
    use super::super::super::remote::RemoteError;
    let d = again_after_ready(Err(Error::Remote(RemoteError::Unreachable {
        server: "https://10.0.0.9:6443".into(),
        message: "client error (Connect)".into(),
    })));
    assert_eq!(d.summary.reason(), Reason::ClusterUnreachable);
    assert_eq!(d.status.phase, Phase::Committed);
    assert_eq!(cond(&d, api::READY).unwrap().status, "Unknown");
    assert_eq!(cond(&d, api::RECONCILING).unwrap().status, "True");
    assert!(!is_stalled(&d));
    assert_eq!(d.requeue, Requeue::Backoff);
    assert!(d.summary.message().contains("https://10.0.0.9:6443"));

    // A missing kubeconfig needs a person: Stalled, still not Ready nor Failed.
    let d = again_after_ready(Err(Error::Remote(RemoteError::SecretNotFound {
        namespace: "platform".into(),
        name: "workload".into(),
        key: "kubeconfig".into(),
    })));
    assert_eq!(d.summary.reason(), Reason::SecretNotFound);
    assert_eq!(d.status.phase, Phase::Committed);
    assert!(is_stalled(&d));

    // A failed read of this cluster keeps the phase, as before.
    let d = again_after_ready(Err(kube_error(503)));
    assert_eq!(d.status.phase, Phase::Ready);
    assert_eq!(cond(&d, api::READY).unwrap().status, "False");

    // And when the cluster answers again, Ready comes back from what it says.
    let d = again_after_ready(Ok(Cluster {
        deployments: Some(vec![deployment(2, 2, vec![])]),
        ..ks(found("True", true, true))
    }));
    assert_eq!(d.status.phase, Phase::Ready);
    assert_eq!(d.summary.reason(), Reason::Applied);
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

/// The status decided by the reconcile after the push: the folder is found as rendered.
fn decide_again(rel: &Release, env: &Environment, cluster: Cluster, now: i64) -> Decision {
    let obs = observed(rel, env.clone(), Some(None));
    let rendered = obs.rendered.as_ref().unwrap().as_ref().unwrap();
    let git = obs.git.as_ref().unwrap().as_ref().unwrap();
    let written = Written {
        env,
        rendered,
        creds: &git.creds,
        target: Target::of(env),
        commit: "12345678".repeat(5),
        pushed: false,
        drift: Some(vec![]),
    };
    status(&Facts {
        release: rel,
        now: at(now),
        rendered: obs.rendered.as_ref(),
        progress: Progress::InGit(written, Box::new(Ok(cluster))),
    })
}

/// The API-write budget of a Release: the status written with the commit is the status the
/// next reconcile (which finds the folder as rendered) decides too, so it writes nothing.
#[test]
fn the_reconcile_after_a_push_decides_the_same_status() {
    let env = environment(serde_json::json!({}));
    let (mut rel, first) = after_push(&env, Ok(Cluster::default()));
    assert_eq!(cond(&first, api::DRIFTED).unwrap().reason, "InSync");
    rel.status = Some(first.status.clone());
    let again = decide_again(&rel, &env, Cluster::default(), 4000);
    assert_eq!(again.status, first.status, "a second status write");
}

/// A rollout is looked at every second at first, every 5 s once it has taken 20 s.
#[test]
fn a_slow_rollout_is_looked_at_less_often() {
    let env = flux_env();
    let rolling = || applied(Some(vec![deployment(2, 1, vec![])]), None);
    let (mut rel, first) = after_push(&env, Ok(rolling()));
    assert_eq!(first.status.phase, Phase::Applied);
    assert_eq!(first.requeue, Requeue::After(Duration::from_secs(1)));
    rel.status = Some(first.status.clone());
    let again = |secs: i64| decide_again(&rel, &env, rolling(), 3000 + secs).requeue;
    assert_eq!(again(10), Requeue::After(Duration::from_secs(1)));
    assert_eq!(again(30), Requeue::After(Duration::from_secs(5)));
}
