//! Per-Release control: suspend, reconcile requests, expiry.

use kube::ResourceExt;

use super::*;

/// The status decided for a suspended Release: the kstatus invariants hold (the
/// `Committed` condition keeps the generation it was committed at).
fn suspended_status(rel: &Release, obs: &Observed) -> Decision {
    let Plan::Stop(stopped) = plan(rel, obs) else {
        panic!("expected a stop");
    };
    let d = status(&Facts {
        release: rel,
        now: at(1000),
        rendered: obs.rendered.as_ref(),
        progress: Progress::Stopped(stopped),
    });
    assert_eq!(api::kstatus_violation(&d.status.conditions), None, "{d:?}");
    assert_eq!(d.status.observed_generation, rel.metadata.generation);
    let ready = cond(&d, api::READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.observed_generation),
        ("False", rel.metadata.generation)
    );
    d
}

fn suspended(mut rel: Release) -> Release {
    rel.spec.suspend = true;
    rel
}

#[test]
fn a_suspended_release_commits_nothing_and_says_whether_a_change_waits() {
    let env = environment(serde_json::json!({}));
    // Written at generation 1, then suspended (generation 2): nothing new to commit.
    let mut rel = suspended(written_release(&env));
    rel.metadata.generation = Some(2);
    let obs = observed(&rel, env.clone(), None);
    let d = suspended_status(&rel, &obs);
    assert_eq!(d.summary.reason(), Reason::Suspended);
    assert!(cond(&d, api::RECONCILING).is_some_and(|c| c.status == "True"));
    assert!(!is_stalled(&d));
    assert_eq!(
        d.status.phase,
        Phase::Ready,
        "nothing waits: the phase stays"
    );
    assert!(
        d.summary.message().contains("nothing is committed"),
        "{d:?}"
    );
    assert_eq!(
        d.requeue,
        Requeue::After(crate::controller::context::RESYNC)
    );
    // The spec changed while suspended: still no commit, and it says a change waits.
    rel.spec.version = "2.0.0".into();
    rel.metadata.generation = Some(3);
    let obs = observed(&rel, env.clone(), None);
    let d = suspended_status(&rel, &obs);
    assert_eq!(d.summary.reason(), Reason::Suspended);
    assert_eq!(d.status.phase, Phase::Pending);
    assert!(
        d.summary
            .message()
            .contains("not committed until it is resumed")
    );
    assert_eq!(
        d.status.commit,
        rel.status.as_ref().unwrap().commit,
        "nothing written"
    );
    // Resumed: the pending change is submitted.
    rel.spec.suspend = false;
    rel.metadata.generation = Some(4);
    let obs = observed(&rel, env, None);
    assert!(matches!(plan(&rel, &obs), Plan::Submit { .. }));
}

#[test]
fn suspend_and_expiry_are_not_rendered_so_toggling_them_changes_nothing_in_git() {
    let env = environment(serde_json::json!({}));
    let rel = release("api", 1);
    let mut other = suspended(rel.clone());
    other.spec.expiry = Some(api::Expiry {
        after: "2h".into(),
        from: api::ExpiryFrom::LastChange,
    });
    assert_eq!(
        render::render(&rel, &env).unwrap().digest,
        render::render(&other, &env).unwrap().digest
    );
}

#[test]
fn a_reconcile_request_rewrites_a_drifted_folder_once_and_is_recorded() {
    let env = environment(serde_json::json!({}));
    let mut rel = written_release(&env);
    let files = render::render(&rel, &env).unwrap().files;
    let mut edited = files.clone();
    edited.insert("deployment-api.yaml".into(), b"edited by hand".to_vec());
    // Without a request: drift is shown, never written.
    let obs = observed(&rel, env.clone(), Some(Some(edited.clone())));
    assert!(matches!(plan(&rel, &obs), Plan::Compare { .. }));
    // A new request on a drifted folder: written again.
    rel.annotations_mut().insert(
        api::RECONCILE_ANNOTATION.into(),
        "2026-11-23T10:00:00Z".into(),
    );
    let obs = observed(&rel, env.clone(), Some(Some(edited.clone())));
    let Plan::Submit {
        env: e,
        rendered,
        git,
        change,
        ..
    } = plan(&rel, &obs)
    else {
        panic!("expected the rendered files to be written again");
    };
    assert_eq!(change.files.as_ref(), Some(&files));
    let written = Written {
        env: e,
        rendered,
        creds: &git.creds,
        target: Target::of(e),
        commit: "abcdef12".repeat(5),
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
    assert_eq!(
        d.status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-23T10:00:00Z")
    );
    assert_eq!(cond(&d, api::DRIFTED).unwrap().status, "False");
    // Handled: the same request does not write again (drift is shown again).
    rel.status = Some(d.status);
    let obs = observed(&rel, env.clone(), Some(Some(edited)));
    assert!(matches!(plan(&rel, &obs), Plan::Compare { .. }));
    // A request on a folder in sync writes nothing, and is recorded.
    rel.annotations_mut().insert(
        api::RECONCILE_ANNOTATION.into(),
        "2026-11-23T11:00:00Z".into(),
    );
    let obs = observed(&rel, env.clone(), Some(Some(files)));
    let Plan::Compare { written } = plan(&rel, &obs) else {
        panic!("expected a compare");
    };
    let d = status(&Facts {
        release: &rel,
        now: at(3000),
        rendered: obs.rendered.as_ref(),
        progress: Progress::InGit(written, Box::new(Ok(Cluster::default()))),
    });
    assert_eq!(
        d.status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-23T11:00:00Z")
    );
    // A suspended Release handles no request.
    let rel = suspended(rel);
    let d = suspended_status(&rel, &observed(&rel, env, None));
    assert_eq!(
        d.status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-23T10:00:00Z")
    );
}

fn expiring(after: &str, from: api::ExpiryFrom, created: i64) -> Release {
    let mut rel = release("api", 1);
    rel.spec.expiry = Some(api::Expiry {
        after: after.into(),
        from,
    });
    rel.metadata.creation_timestamp = Some(at(created));
    rel
}

#[test]
fn expiry_counts_from_creation_or_from_the_last_change() {
    use super::super::decide::control::{expired, expires_at};
    let now = at(1000).0;
    let rel = expiring("1h30m", api::ExpiryFrom::Creation, 100);
    assert_eq!(expires_at(&rel, now), Some(at(100 + 5400).0));
    assert_eq!(expired(&rel, now), None);
    assert_eq!(expired(&rel, at(5500).0), Some(at(5500).0));
    // Suspended or already being deleted: not expired (a suspended Release commits nothing).
    assert_eq!(expired(&suspended(rel.clone()), at(9000).0), None);
    // From the last change: the time the generation was first seen, kept in the status.
    let mut rel = expiring("10s", api::ExpiryFrom::LastChange, 100);
    assert_eq!(expires_at(&rel, now), Some(at(1010).0));
    rel.status = Some(ReleaseStatus {
        observed_generation: Some(1),
        expires_at: Some(at(1010).0.to_string()),
        ..Default::default()
    });
    assert_eq!(expires_at(&rel, at(5000).0), Some(at(1010).0));
    assert_eq!(expired(&rel, at(5000).0), Some(at(1010).0));
    // A new generation starts the clock again.
    rel.metadata.generation = Some(2);
    assert_eq!(expires_at(&rel, at(5000).0), Some(at(5010).0));
    assert_eq!(expires_at(&release("api", 1), now), None);
}

#[test]
fn the_status_shows_the_expiry_and_the_release_is_looked_at_when_it_expires() {
    let env = environment(serde_json::json!({}));
    let rel = expiring("30s", api::ExpiryFrom::Creation, 990);
    let d = decided_in_git(
        &rel,
        &env,
        "12345678".repeat(5),
        true,
        at(1000),
        Ok(Cluster::default()),
    );
    assert_eq!(d.status.expires_at, Some(at(1020).0.to_string()));
    // 20 s left (and a second more, so that it has passed when looked at).
    assert_eq!(d.requeue, Requeue::After(Duration::from_secs(21)));
}

#[test]
fn durations_parse_as_the_schema_allows() {
    use crate::api::parse_duration;
    for (text, secs) in [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604_800),
        ("1h30m", 5400),
    ] {
        assert_eq!(
            parse_duration(text),
            Some(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in ["", "5", "h", "1.5h", "-1h", "1w", "99999999999999999999d"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}
