use super::*;

/// What was observed for `rel` in a plain Environment, changed by `edit`.
fn seen(rel: &Release, spec: serde_json::Value, edit: impl FnOnce(&mut Observed)) -> Observed {
    let mut obs = observed(rel, environment(spec), None);
    edit(&mut obs);
    obs
}

fn no_env(obs: &mut Observed, err: Error) {
    obs.env = Err(err);
    (obs.rendered, obs.git) = (None, None);
}

#[test]
#[rustfmt::skip]
fn stops_before_git_map_to_reasons_phases_and_stalled() {
    let rel = release("api", 1);
    let plain = || serde_json::json!({});
    let git_err = |e: GitError| Some(Err(Error::Git(e)));
    let url = || "https://git.example/gitops.git".to_string();
    let cases: Vec<(&str, Observed, Reason, bool, Phase)> = vec![
        ("no environment", seen(&rel, plain(), |o| no_env(o, Error::EnvironmentNotFound { namespace: "team".into(), name: "staging".into() })), Reason::EnvironmentNotFound, true, Phase::Failed),
        ("API error", seen(&rel, plain(), |o| no_env(o, kube_error(500))), Reason::KubernetesError, false, Phase::Pending),
        ("no secret", seen(&rel, plain(), |o| o.git = Some(Err(Error::Credentials(CredentialsError::SecretNotFound { namespace: "team".into(), name: "git".into() })))), Reason::SecretNotFound, true, Phase::Failed),
        ("git down", seen(&rel, plain(), |o| o.git = git_err(GitError::RepositoryUnreachable { url: url(), message: "connection refused".into() })), Reason::RepositoryUnreachable, false, Phase::Pending),
        ("bad token", seen(&rel, plain(), |o| o.git = git_err(GitError::AuthenticationFailed { url: url() })), Reason::AuthenticationFailed, true, Phase::Failed),
        ("two sources", seen(&rel, plain(), |o| { o.rendered = Some(Err(Error::Render(RenderError::NoSource))); o.git = None; }), Reason::NoSource, true, Phase::Failed),
        ("suspended", seen(&rel, serde_json::json!({"suspend": true}), |_| {}), Reason::EnvironmentSuspended, false, Phase::Pending),
        ("folder of another team", seen(&rel, plain(), |o| o.git = Some(Ok(GitFacts { creds: Credentials::None, folder: folder_of("other-team/api") }))), Reason::AppConflict, true, Phase::Failed),
    ];
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
    let both = vec!["team/a-first".to_string(), "team/b-second".to_string()];
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
    // As the reflector keeps it: the one managedFields entry owning the spec.
    rel.metadata.managed_fields = serde_json::from_value(serde_json::json!([
        {"manager": "tumbler-rollback", "operation": "Update", "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:version": {}}}},
        {"manager": "kubectl-label", "operation": "Update", "time": "2026-01-02T00:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}},
    ]))
    .unwrap();
    rel.keep_spec_manager_only();
    let obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    let Plan::Submit { change, .. } = plan(&rel, &obs) else {
        panic!("expected a submit");
    };
    assert_eq!(change.requested_by.as_deref(), Some("tumbler-rollback"));
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
        move_out,
    } = plan(&rel, &obs)
    else {
        panic!("expected a submit to the new target");
    };
    assert_eq!(change.env_path, "clusters/eu/staging");
    // Same repository and branch: the old folder is removed after the new one is written.
    let old = move_out.expect("the old folder is removed");
    assert_eq!(
        (old.env_path.as_str(), old.kind.clone()),
        ("envs/staging", ChangeKind::Delete)
    );
    assert!(old.files.is_none());
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

/// A Release of `team-a` attached to Environment `production` of namespace `platform`.
fn attached(releases: serde_json::Value) -> (Release, Environment) {
    let mut rel = release("api", 1);
    rel.metadata.namespace = Some("team-a".into());
    rel.spec.environment = "production".into();
    rel.spec.environment_namespace = Some("platform".into());
    let mut env = environment(serde_json::json!({"releases": releases}));
    env.metadata.name = Some("production".into());
    env.metadata.namespace = Some("platform".into());
    (rel, env)
}

#[test]
fn an_environment_admits_releases_of_other_namespaces_only_as_it_says() {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let selector = serde_json::json!({"namespaces": {"from": "Selector", "selector": {"matchLabels": {"tumbler.dev/tenant": "true"}}}});
    // (situation, releases spec, namespace labels, admitted)
    let cases = [
        ("default is Same", serde_json::json!({}), None, false),
        (
            "All",
            serde_json::json!({"namespaces": {"from": "All"}}),
            None,
            true,
        ),
        (
            "selector matches",
            selector.clone(),
            Some(labels(&[("tumbler.dev/tenant", "true")])),
            true,
        ),
        (
            "selector does not match",
            selector.clone(),
            Some(labels(&[("team", "a")])),
            false,
        ),
    ];
    for (what, spec, ns_labels, admitted) in cases {
        let (rel, env) = attached(spec);
        let mut obs = observed(&rel, env, Some(None));
        obs.claimants = vec!["team-a/api".into()];
        obs.namespace_labels = ns_labels.map(Ok);
        match plan(&rel, &obs) {
            Plan::Submit { change, .. } => {
                assert!(admitted, "{what}: submitted");
                assert_eq!(change.release, "team-a/api");
            }
            Plan::Stop(stopped) => {
                assert!(!admitted, "{what}: refused");
                let d = status(&Facts {
                    release: &rel,
                    now: at(1),
                    rendered: obs.rendered.as_ref(),
                    progress: Progress::Stopped(stopped),
                });
                check(&rel, &d);
                assert_eq!(
                    d.summary.reason(),
                    Reason::NotAllowedByEnvironment,
                    "{what}"
                );
                assert!(is_stalled(&d));
                let message = d.summary.message();
                assert!(
                    message.contains("platform/production") && message.contains("team-a"),
                    "{message}"
                );
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn a_release_of_an_environment_overlapping_an_older_one_is_refused() {
    let rel = release("api", 1);
    let mut obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    obs.overlaps = Some(("platform".into(), "production".into()));
    let d = stopped_status(&rel, &obs);
    assert_eq!(d.summary.reason(), Reason::OverlappingEnvironment);
    assert!(d.summary.message().contains("platform/production"));
    assert!(is_stalled(&d));
}

#[test]
fn a_release_moved_to_another_repository_leaves_its_old_folder() {
    let env = environment(serde_json::json!({}));
    let rel = written_release(&env);
    let elsewhere = environment(
        serde_json::json!({"repository": {"url": "https://git.example/other.git", "branch": "main", "path": "envs/staging"}}),
    );
    let obs = observed(&rel, elsewhere, Some(None));
    let Plan::Submit { move_out, .. } = plan(&rel, &obs) else {
        panic!("expected a submit to the new repository");
    };
    assert!(
        move_out.is_none(),
        "nothing is removed in another repository"
    );
}

#[test]
fn a_promoted_version_is_committed_as_a_promotion_and_a_later_edit_as_a_release() {
    let mut rel = release("api-prod", 2);
    rel.metadata.annotations = Some(BTreeMap::from([(
        api::PROMOTED_FROM_ANNOTATION.to_string(),
        "team/api-staging@1.2.3".to_string(),
    )]));
    let obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    let Plan::Submit { change, .. } = plan(&rel, &obs) else {
        panic!("expected a submit");
    };
    assert_eq!(
        change.kind,
        ChangeKind::Promote {
            from: "team/api-staging@1.2.3".into()
        }
    );
    // The annotation stays behind when a person sets another version: a plain release.
    rel.spec.version = "1.2.4".into();
    let obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    let Plan::Submit { change, .. } = plan(&rel, &obs) else {
        panic!("expected a submit");
    };
    assert_eq!(change.kind, ChangeKind::Release);
    // A rollback to a promoted version is a rollback.
    rel.spec.version = "1.2.3".into();
    rel.metadata.annotations.as_mut().unwrap().insert(
        api::ROLLBACK_ANNOTATION.to_string(),
        "1.2.4 -> 1.2.3".to_string(),
    );
    let obs = observed(&rel, environment(serde_json::json!({})), Some(None));
    let Plan::Submit { change, .. } = plan(&rel, &obs) else {
        panic!("expected a submit");
    };
    assert_eq!(
        change.kind,
        ChangeKind::Rollback {
            from: "1.2.4".into()
        }
    );
}
