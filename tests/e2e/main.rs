//! End-to-end tests of the pipeline Release → render → commit → push, against a real
//! kube-apiserver and a real git server on loopback. Run with `make e2e`.

mod api;
mod cli;
mod clusters;
mod dashboards;
mod flux;
mod harness;
mod install;
mod node;
mod notifications;
mod patches;
mod promotion;
mod robust;
mod rollback;
mod sharding;
mod tenancy;
mod workflows_control;

use std::time::Duration;

use harness::*;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use tumbler::api::Phase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_is_rendered_committed_and_pushed_with_trailers() {
    let s = Scenario::new("create").await;
    let url = new_repo(&s.ns, false);
    s.apply(
        &s.environments(),
        environment("staging", &url, json!({"targetNamespace": "apps"})),
    )
    .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;

    let rel = s.wait_release("api", "Committed=True", committed).await;
    let st = rel.status.clone().unwrap();
    assert_eq!(st.phase, Phase::Committed);
    let commit = st.commit.clone().unwrap();
    assert_eq!(
        st.revision.as_deref(),
        Some(format!("main@sha1:{commit}").as_str())
    );
    assert_eq!(st.commit_short.as_deref(), Some(&commit[..8]));
    assert!(
        st.rendered_digest
            .as_deref()
            .unwrap()
            .starts_with("sha256:")
    );

    let clone = Clone::of(&url);
    assert_eq!(
        clone.head(),
        commit,
        "the Release's commit is the branch head"
    );
    assert_eq!(clone.commits(), 2, "one commit on top of the initial one");
    let msg = clone.message("HEAD");
    assert!(
        msg.contains(&format!("Tumbler-Release: {}/api", s.ns)),
        "{msg}"
    );
    assert!(msg.contains("Tumbler-Version: 1.0.0"), "{msg}");
    assert!(msg.contains("Tumbler-Generation: 1"), "{msg}");
    let deployment = clone
        .read("envs/staging/api/deployment-api.yaml")
        .expect("deployment file");
    assert!(
        deployment.contains("registry.example.com/demo:1.0.0"),
        "{deployment}"
    );
    assert!(deployment.contains("namespace: apps"), "{deployment}");
    let env_kustomization = clone
        .read("envs/staging/kustomization.yaml")
        .expect("env kustomization");
    assert!(env_kustomization.contains("api"), "{env_kustomization}");
    assert!(clone.exists("envs/staging/api/.tumbler/release.yaml"));
    assert!(clone.exists("envs/staging/api/kustomization.yaml"));

    let events = s.event_reasons("Release", "api").await;
    assert!(
        events.iter().any(|r| r == "NotVerified"),
        "events: {events:?}"
    );
    let env = s
        .wait_environment("staging", "head and release count", |e| {
            e.status
                .as_ref()
                .is_some_and(|st| st.releases == 1 && st.head.is_some())
        })
        .await;
    assert!(tumbler::api::Conditioned::is_true(&env, "Ready"));
    s.finish().await;
}

/// Without Flux, `kubectl wait --for=condition=Ready` never passes on a guess; waiting for
/// `Committed` does, and the Environment says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_flux_kubectl_wait_for_ready_fails_and_for_committed_passes() {
    let s = Scenario::new("unverified").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    let wait = |condition: &str, timeout: &str| {
        kubectl(
            &[
                "wait",
                "-n",
                &s.ns,
                &format!("--for=condition={condition}"),
                "release/api",
                &format!("--timeout={timeout}"),
            ],
            None,
        )
    };
    let (ok, out) = wait("Committed", "60s");
    assert!(
        ok,
        "waiting for Committed failed: {out}\n{}",
        s.log_tail(30)
    );
    let (ok, out) = wait("Ready", "10s");
    assert!(!ok, "Ready without Flux must not pass: {out}");
    let rel = s.wait_release("api", "NotVerified", committed).await;
    let ready = cond(&rel, "Ready").unwrap();
    assert!(ready.message.contains("not verified"), "{}", ready.message);
    assert!(cond(&rel, "Reconciling").is_none() && cond(&rel, "Stalled").is_none());
    s.wait_environment("staging", "FluxReady=False NoFluxKustomization", |e| {
        e.status.as_ref().is_some_and(|st| {
            st.conditions.iter().any(|c| {
                c.type_ == "FluxReady" && c.status == "False" && c.reason == "NoFluxKustomization"
            })
        })
    })
    .await;
    s.finish().await;
}

/// Who released: the field manager that last changed the spec is the commit's
/// `Tumbler-Requested-By`, in `tumbler log` and in the status history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_field_manager_that_changed_the_spec_is_in_the_commit() {
    let s = Scenario::new("requester").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    let doc = template_release("api", "staging", "api", "1.0.0").to_string();
    let (ok, out) = kubectl(
        &["apply", "--field-manager=ci-bot", "-n", &s.ns, "-f", "-"],
        Some(&doc),
    );
    assert!(ok, "kubectl apply: {out}");
    let rel = s.wait_release("api", "committed", committed).await;
    let clone = Clone::of(&url);
    let msg = clone.message("HEAD");
    assert!(msg.contains("Tumbler-Requested-By: ci-bot\n"), "{msg}");
    let history = &rel.status.as_ref().unwrap().history;
    assert_eq!(history[0].requested_by.as_deref(), Some("ci-bot"));

    // A person edits the version with another client: the next commit names it.
    let (ok, out) = kubectl(
        &[
            "patch",
            "-n",
            &s.ns,
            "release/api",
            "--type=merge",
            "--field-manager=release-desk",
            "-p",
            r#"{"spec":{"version":"1.1.0"}}"#,
        ],
        None,
    );
    assert!(ok, "kubectl patch: {out}");
    s.wait_release("api", "1.1.0 committed", |r| {
        committed(r) && r.metadata.generation == Some(2)
    })
    .await;
    let msg = Clone::of(&url).message("HEAD");
    assert!(
        msg.contains("Tumbler-Requested-By: release-desk\n"),
        "{msg}"
    );

    let (ok, out) = tumbler(&["log", "-e", "staging", "-n", &s.ns, "-o", "json"]);
    assert!(ok, "{out}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let who: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entry"]["requested_by"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["release-desk", "ci-bot"], "{out}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_makes_one_commit_and_reapply_makes_none() {
    let s = Scenario::new("update").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    let first = s.wait_release("api", "first commit", committed).await;
    let first_commit = first.status.unwrap().commit.unwrap();

    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.1.0"),
    )
    .await;
    let second = s
        .wait_release("api", "second commit", |r| {
            committed(r)
                && r.status.as_ref().unwrap().commit.as_deref() != Some(first_commit.as_str())
        })
        .await;
    let clone = Clone::of(&url);
    assert_eq!(clone.commits(), 3);
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.1.0")
    );
    assert!(clone.message("HEAD").contains("Tumbler-Generation: 2"));

    // A change that renders the same files (a label on the Release) makes no commit.
    let patch = json!({"metadata": {"labels": {"touched": "yes"}}});
    let reconciles = s.metric(RELEASE_RECONCILES).await;
    s.releases()
        .patch("api", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    s.wait_reconciles(reconciles, 1).await;
    let again = s.wait_release("api", "still committed", committed).await;
    assert_eq!(again.status.unwrap().commit, second.status.unwrap().commit);
    assert_eq!(
        Clone::of(&url).commits(),
        3,
        "no commit for an unchanged render"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_release_removes_its_folder_in_a_commit() {
    let s = Scenario::new("delete").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    s.apply(
        &s.releases(),
        template_release("web", "staging", "web", "2.0.0"),
    )
    .await;
    s.wait_release("api", "committed", committed).await;
    s.wait_release("web", "committed", committed).await;

    s.releases()
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while s.releases().get_opt("api").await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "release not deleted\n{}",
            s.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let clone = Clone::of(&url);
    assert!(!clone.exists("envs/staging/api"), "app folder still in git");
    assert!(
        clone.exists("envs/staging/web/deployment-web.yaml"),
        "the other app was touched"
    );
    let kustomization = clone.read("envs/staging/kustomization.yaml").unwrap();
    assert!(
        !kustomization.lines().any(|l| l.trim() == "- api"),
        "{kustomization}"
    );
    assert!(
        clone.message("HEAD").contains("Tumbler-Action: delete"),
        "{}",
        clone.message("HEAD")
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_racing_into_one_repo_all_land_and_outside_commits_survive() {
    let s = Scenario::new("race").await;
    let url = new_repo(&s.ns, false);
    // Someone else's file, outside Tumbler's folders.
    let outside = Clone::of(&url);
    std::fs::create_dir_all(outside.path().join("infra")).unwrap();
    std::fs::write(outside.path().join("infra/notes.txt"), "hands off\n").unwrap();
    git(Some(outside.path()), &["add", "."]);
    git(Some(outside.path()), &["commit", "-qm", "outside change"]);
    outside_push(outside.path());

    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    let apps: Vec<String> = (0..8).map(|i| format!("app{i}")).collect();
    for app in &apps {
        s.apply(
            &s.releases(),
            template_release(app, "staging", app, "1.0.0"),
        )
        .await;
    }
    // An outside push while Tumbler is writing.
    std::fs::write(outside.path().join("infra/notes.txt"), "hands off, again\n").unwrap();
    git(
        Some(outside.path()),
        &["commit", "-qam", "outside change 2"],
    );
    outside_push(outside.path());
    for app in &apps {
        s.wait_release(app, "committed", committed).await;
    }
    let clone = Clone::of(&url);
    for app in &apps {
        assert!(
            clone.exists(&format!("envs/staging/{app}/deployment-{app}.yaml")),
            "{app} missing"
        );
    }
    assert_eq!(
        clone.read("infra/notes.txt").as_deref(),
        Some("hands off, again\n"),
        "outside commit lost"
    );
    // Initial + 2 outside + one per app, none duplicated.
    assert_eq!(clone.commits(), 3 + apps.len());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restart_makes_no_duplicate_commit() {
    let mut s = Scenario::new("restart").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    for app in ["a", "b", "c"] {
        s.apply(
            &s.releases(),
            template_release(app, "staging", app, "1.0.0"),
        )
        .await;
    }
    for app in ["a", "b", "c"] {
        s.wait_release(app, "committed", committed).await;
    }
    let before = Clone::of(&url).commits();
    s.kill_controller();
    // A change while the controller is down is picked up after the restart.
    s.apply(
        &s.releases(),
        template_release("b", "staging", "b", "1.0.1"),
    )
    .await;
    s.start_controller();
    s.wait_release("b", "the new version committed", |r| {
        committed(r) && r.status.as_ref().unwrap().observed_generation == Some(2)
    })
    .await;
    // Every Release was looked at again by the new process.
    s.wait_reconciles(0.0, 3).await;
    for app in ["a", "c"] {
        s.wait_release(app, "still committed", committed).await;
    }
    assert_eq!(
        Clone::of(&url).commits(),
        before + 1,
        "only the change made while down is committed"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_repository_is_written_with_the_secret_credentials() {
    let s = Scenario::new("auth").await;
    s.private_repo_and_environment("staging").await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    s.wait_release("api", "committed", committed).await;
    s.finish().await;
}

/// Each bad input: a specific reason, an actionable message, an Event, and no commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_reason_an_event_and_no_commit() {
    let s = Scenario::new("bad").await;
    let url = new_repo(&s.ns, false);
    let private = new_repo(&format!("{}-p", s.ns), true);
    s.secret(
        "wrong",
        &[("username", "nobody"), ("password", "not-the-password")],
    )
    .await;
    s.secret("empty", &[("unrelated", "x")]).await;
    s.apply(
        &s.environments(),
        environment(
            "good",
            &url,
            json!({"policy": {"allowedKinds": ["ConfigMap", "Deployment", "Service"]}}),
        ),
    )
    .await;
    s.apply(
        &s.environments(),
        environment(
            "nosecret",
            &url,
            json!({"repository": {"secretRef": {"name": "missing"}, "insecure": true}}),
        ),
    )
    .await;
    s.apply(
        &s.environments(),
        environment(
            "badsecret",
            &url,
            json!({"repository": {"secretRef": {"name": "empty"}, "insecure": true}}),
        ),
    )
    .await;
    s.apply(
        &s.environments(),
        environment(
            "wrongcreds",
            &private,
            json!({"repository": {"secretRef": {"name": "wrong"}, "insecure": true}}),
        ),
    )
    .await;
    s.apply(
        &s.environments(),
        environment("unreachable", "http://127.0.0.1:9/nothing.git", json!({})),
    )
    .await;
    s.apply(
        &s.environments(),
        environment(
            "nobranch",
            &url,
            json!({"repository": {"branch": "does-not-exist"}}),
        ),
    )
    .await;

    let manifests = |items: serde_json::Value| json!({"manifests": items});
    let cases: Vec<(&str, &str, serde_json::Value, &str, &str)> = vec![
        (
            "no-env",
            "missing",
            json!(null),
            "EnvironmentNotFound",
            "missing",
        ),
        (
            "no-secret",
            "nosecret",
            json!(null),
            "SecretNotFound",
            "missing",
        ),
        (
            "bad-secret",
            "badsecret",
            json!(null),
            "InvalidSecret",
            "empty",
        ),
        (
            "wrong-creds",
            "wrongcreds",
            json!(null),
            "AuthenticationFailed",
            "",
        ),
        (
            "unreachable",
            "unreachable",
            json!(null),
            "RepositoryUnreachable",
            "127.0.0.1",
        ),
        (
            "no-branch",
            "nobranch",
            json!(null),
            "BranchNotFound",
            "does-not-exist",
        ),
        (
            "bad-yaml",
            "good",
            manifests(json!([{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}])),
            "InvalidManifest",
            "spec.manifests[0]",
        ),
        (
            "forbidden",
            "good",
            manifests(json!([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}])),
            "ForbiddenKind",
            "Secret",
        ),
        (
            "cluster-scoped",
            "good",
            manifests(
                json!([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}]),
            ),
            "ClusterScopedRefused",
            "ClusterRole",
        ),
    ];
    for (name, env, source, _, _) in &cases {
        let mut doc = template_release(name, env, name, "1.0.0");
        if !source.is_null() {
            doc["spec"].as_object_mut().unwrap().remove("template");
            merge(&mut doc["spec"], source.clone());
        }
        s.apply(&s.releases(), doc).await;
    }
    let mut patched = template_release("bad-patch", "good", "bad-patch", "1.0.0");
    patched["spec"]["patches"] = json!([{"target": {"kind": "Deployment"}, "patch": "- op: replace\n  path: /spec/does/not/exist\n  value: 1\n"}]);
    s.apply(&s.releases(), patched).await;

    let mut all = cases
        .iter()
        .map(|(n, _, _, r, m)| (*n, *r, *m))
        .collect::<Vec<_>>();
    all.push(("bad-patch", "PatchFailed", ""));
    for (name, reason, needle) in all {
        let rel = s
            .wait_release(name, &format!("Ready=False reason {reason}"), |r| {
                cond(r, "Ready").is_some_and(|c| c.status == "False" && c.reason == reason)
            })
            .await;
        let ready = cond(&rel, "Ready").unwrap();
        assert!(
            ready.message.contains(needle),
            "{name}: message {:?} should mention {needle:?}",
            ready.message
        );
        assert!(
            !ready.message.contains("not-the-password"),
            "{name}: secret leaked into status"
        );
        let st = rel.status.as_ref().unwrap();
        assert!(st.commit.is_none(), "{name}: committed despite bad input");
        let events = s.event_reasons("Release", name).await;
        assert!(
            events.iter().any(|r| r == reason),
            "{name}: no {reason} event in {events:?}"
        );
    }
    assert_eq!(
        Clone::of(&url).commits(),
        1,
        "bad input must not commit anything"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_release_claiming_an_app_folder_is_refused() {
    let s = Scenario::new("conflict").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("first", "staging", "api", "1.0.0"),
    )
    .await;
    s.wait_release("first", "committed", committed).await;
    s.apply(
        &s.releases(),
        template_release("second", "staging", "api", "9.9.9"),
    )
    .await;
    let rel = s
        .wait_release("second", "AppConflict", |r| {
            cond(r, "Ready").is_some_and(|c| c.reason == "AppConflict")
        })
        .await;
    assert!(cond(&rel, "Ready").unwrap().message.contains("first"));
    let clone = Clone::of(&url);
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.0.0"),
        "the first Release's files were overwritten"
    );
    assert_eq!(clone.commits(), 2);
    s.finish().await;
}
