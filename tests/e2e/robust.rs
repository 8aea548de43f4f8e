//! One bad input or one slow server stops nothing else: a change git refuses fails alone,
//! a git server that never answers costs only its own Releases, a hand-broken
//! kustomization.yaml gives one reason without a re-clone loop, a namespace deletion never
//! hangs, a repointed Environment moves its Releases, and an oversized or absurdly nested
//! Release is refused without taking the controller's memory or the others with it.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use tumbler::api::Release;

use crate::harness::*;

/// Refused for this reason, Stalled, at this generation.
fn stalled_with(rel: &Release, reason: &str) -> bool {
    ready_is(rel, "False", reason) && cond(rel, "Stalled").is_some_and(|c| c.status == "True")
}

fn manifests_release(name: &str, env: &str, manifests: Value) -> Value {
    json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name},
        "spec": {"environment": env, "app": name, "version": "1.0.0", "namespace": "apps",
            "manifests": manifests}
    })
}

const RECLONES: &str = "tumbler_git_operations_total{operation=\"reclone\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_git_refuses_fails_alone_while_five_good_releases_land() {
    let s = Scenario::new("refused").await;
    let url = s.repo_and_environment("staging", json!({})).await;
    // A kind git refuses as a path component (`.git.` is `.git` on some file systems),
    // submitted together with five good Releases.
    let bad =
        json!([{"apiVersion": "example.com/v1", "kind": "x/.git./y", "metadata": {"name": "cfg"}}]);
    s.apply(&s.releases(), manifests_release("bad", "staging", bad))
        .await;
    let apps: Vec<String> = (0..5).map(|i| format!("good{i}")).collect();
    for app in &apps {
        s.release(app, "staging", "1.0.0").await;
    }
    for app in &apps {
        s.wait_release(app, "committed", committed).await;
    }
    let bad = s
        .wait_release("bad", "refused by git", |r| stalled_with(r, "InvalidPath"))
        .await;
    assert!(bad.status.as_ref().unwrap().commit.is_none());
    let message = &cond(&bad, "Ready").unwrap().message;
    assert!(message.contains(".git."), "{message}");
    assert!(
        s.event_reasons("Release", "bad")
            .await
            .contains(&"InvalidPath".to_string())
    );
    let clone = Clone::of(&url);
    for app in &apps {
        assert!(
            clone.exists(&format!("envs/staging/{app}/kustomization.yaml")),
            "{app}"
        );
    }
    assert!(!clone.exists("envs/staging/bad"));
    assert_eq!(s.metric(RECLONES).await, 0.0, "no re-clone");
    s.finish().await;
}

/// A server that accepts connections and never answers.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = vec![];
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    format!("http://127.0.0.1:{port}/gitops.git")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_server_that_never_answers_stalls_only_its_own_releases() {
    let s = Scenario::new("hang").await;
    s.apply(
        &s.environments(),
        environment("dead", &black_hole(), json!({})),
    )
    .await;
    s.repo_and_environment("live", json!({})).await;
    for i in 0..3 {
        s.release(&format!("dead{i}"), "dead", "1.0.0").await;
    }
    let start = Instant::now();
    for i in 0..3 {
        s.release(&format!("live{i}"), "live", "1.0.0").await;
    }
    for i in 0..3 {
        s.wait_release_for(
            &format!("live{i}"),
            "committed",
            Duration::from_secs(30),
            committed,
        )
        .await;
    }
    let live_after = start.elapsed();
    for i in 0..3 {
        let rel = s
            .wait_release(&format!("dead{i}"), "a timeout", |r| {
                ready_is(r, "False", "GitTimeout")
            })
            .await;
        assert!(
            cond(&rel, "Reconciling").is_some_and(|c| c.status == "True"),
            "transient"
        );
    }
    eprintln!("live Releases committed {live_after:?} after creation while the dead server hung");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_broken_environment_kustomization_gives_one_reason_and_no_reclone_loop() {
    let s = Scenario::new("brokenkust").await;
    let url = s.repo_and_environment("staging", json!({})).await;
    s.release("api", "staging", "1.0.0").await;
    s.wait_release("api", "committed", committed).await;

    let outside = Clone::of(&url);
    let kpath = outside.path().join("envs/staging/kustomization.yaml");
    let good = std::fs::read_to_string(&kpath).unwrap();
    std::fs::write(&kpath, "resources: [unclosed\n").unwrap();
    git(Some(outside.path()), &["commit", "-qam", "hand edit"]);
    outside_push(outside.path());

    s.release("api", "staging", "1.0.1").await;
    let rel = s
        .wait_release("api", "the broken kustomization named", |r| {
            stalled_with(r, "InvalidKustomization")
        })
        .await;
    let message = &cond(&rel, "Ready").unwrap().message;
    assert!(message.contains("kustomization.yaml"), "{message}");
    // It is retried (a person may fix git without touching the Release), and no retry
    // clones the repository again.
    s.wait_reconciles(s.metric(RELEASE_RECONCILES).await, 2)
        .await;
    assert_eq!(s.metric(RECLONES).await, 0.0, "no re-clone loop");

    // Fixed by hand: the Release goes through without being touched.
    std::fs::write(&kpath, good).unwrap();
    git(Some(outside.path()), &["commit", "-qam", "fix by hand"]);
    outside_push(outside.path());
    s.wait_release("api", "committed after the fix", |r| {
        committed(r) && cond(r, "Stalled").is_none()
    })
    .await;
    let clone = Clone::of(&url);
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("1.0.1")
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_with_an_environment_secret_and_releases_finishes_within_a_minute() {
    let s = Scenario::new("nsdelete").await;
    let url = s.private_repo_and_environment("staging").await;
    for app in ["api", "web"] {
        s.release(app, "staging", "1.0.0").await;
    }
    for app in ["api", "web"] {
        s.wait_release(app, "committed", committed).await;
    }
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    let start = Instant::now();
    namespaces
        .delete(&s.ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
    loop {
        if namespaces.get_opt(&s.ns).await.unwrap().is_none() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "namespace {} still there after a minute\n{}",
            s.ns,
            s.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("namespace deleted in {:?}", start.elapsed());
    // The Secret went first; the folders were still removed with the credentials read
    // before.
    let (ok, out) = run_cmd(
        "git",
        &["ls-remote", &with_credentials(&url), "refs/heads/main"],
        None,
    );
    assert!(ok, "{out}");
    let clone = Clone::of(&with_credentials(&url));
    assert!(!clone.exists("envs/staging/api"), "api folder left in git");
    assert!(!clone.exists("envs/staging/web"), "web folder left in git");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_repointed_to_another_folder_writes_its_releases_there() {
    let s = Scenario::new("repoint").await;
    let url = s.repo_and_environment("staging", json!({})).await;
    s.release("api", "staging", "1.0.0").await;
    let before = s.wait_release("api", "committed", committed).await;
    assert!(
        before
            .status
            .as_ref()
            .unwrap()
            .target
            .as_deref()
            .unwrap()
            .ends_with(" main envs/staging")
    );

    s.apply(
        &s.environments(),
        environment(
            "staging",
            &url,
            json!({"repository": {"path": "clusters/eu/staging"}}),
        ),
    )
    .await;
    let after = s
        .wait_release("api", "written to the new folder", |r| {
            committed(r)
                && r.status
                    .as_ref()
                    .and_then(|s| s.target.as_deref())
                    .is_some_and(|t| t.ends_with("clusters/eu/staging"))
        })
        .await;
    assert_ne!(
        after.status.as_ref().unwrap().commit,
        before.status.as_ref().unwrap().commit
    );
    let clone = Clone::of(&url);
    assert!(clone.exists("clusters/eu/staging/api/deployment-api.yaml"));
    assert!(
        clone
            .read("clusters/eu/staging/kustomization.yaml")
            .unwrap()
            .contains("api")
    );
    // Same repository and branch: the app moved; its old folder and entry are gone.
    let old_entry_gone = |c: &Clone| {
        !c.exists("envs/staging/api")
            && !c
                .read("envs/staging/kustomization.yaml")
                .unwrap_or_default()
                .contains("- api")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !old_entry_gone(&Clone::of(&url)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the old folder stayed\n{}",
            s.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        s.event_reasons("Release", "api")
            .await
            .contains(&"Repointed".to_string())
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_absurdly_nested_releases_are_refused_and_the_others_go_on() {
    let mut s = Scenario::new("oversize").await;
    let url = s.repo_and_environment("staging", json!({})).await;
    s.release("first", "staging", "1.0.0").await;
    s.wait_release("first", "committed", committed).await;
    let pid = s.controller_pid().expect("controller running");
    let rss_before = rss_mib(pid);

    // 300 ConfigMaps and one 64 KiB patch aimed at all of them: ~19 MiB if applied.
    let maps: Vec<Value> = (0..300)
        .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"k": "v".repeat(512)}}))
        .collect();
    let mut big = manifests_release("big", "staging", json!(maps));
    big["spec"]["patches"] = json!([{"target": {"kind": "ConfigMap"},
        "patch": format!("data:\n  blob: \"{}\"\n", "x".repeat(64 * 1024))}]);
    s.apply(&s.releases(), big).await;

    // A ConfigMap nested 300 levels deep: the API server takes it; serde_json alone would
    // refuse the whole list of Releases.
    let mut deep = json!("bottom");
    for _ in 0..300 {
        deep = json!({"a": deep});
    }
    let nested = json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "data": deep}]);
    s.apply(&s.releases(), manifests_release("deep", "staging", nested))
        .await;

    let big = s
        .wait_release("big", "refused as too large", |r| {
            stalled_with(r, "RenderTooLarge")
        })
        .await;
    assert!(
        cond(&big, "Ready")
            .unwrap()
            .message
            .contains("split the app")
    );
    s.wait_release("deep", "refused as too deep", |r| {
        stalled_with(r, "InvalidManifest")
    })
    .await;
    let rss_after = rss_mib(pid);
    eprintln!(
        "controller RSS: {rss_before:.1} MiB before the bad Releases, {rss_after:.1} MiB after"
    );
    assert!(
        rss_after < rss_before + 64.0,
        "controller RSS grew from {rss_before:.1} to {rss_after:.1} MiB"
    );
    // A restart lists every Release again, the deep one included: the others still go on.
    s.kill_controller();
    s.start_controller();
    s.release("after", "staging", "1.0.0").await;
    s.wait_release("after", "committed after a restart", committed)
        .await;
    let clone = Clone::of(&url);
    assert!(!clone.exists("envs/staging/big"));
    assert!(!clone.exists("envs/staging/deep"));
    s.finish().await;
}
