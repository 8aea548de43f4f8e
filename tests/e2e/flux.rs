//! The loop closed with real Flux controllers: Ready when Flux applied the commit, Failed
//! with Flux's message when it could not; rollback and the release log.

use std::time::Instant;

use serde_json::json;
use tumbler::api::Phase;

use crate::harness::*;

pub(crate) fn flux_objects(s: &Scenario, url: &str) {
    flux_objects_waiting(s, url, true);
}

/// The GitRepository and the Kustomization that applies `envs/staging`; `wait`: whether it
/// waits for what it applied to be healthy (not in per-app mode, where each app's own
/// Kustomization does, and one failing app must not hold the others back).
pub(crate) fn flux_objects_waiting(s: &Scenario, url: &str, wait: bool) {
    kubectl(
        &["apply", "-f", "-"],
        Some(&flux_manifests(&s.ns, url, wait)),
    );
}

/// The YAML of those two objects in namespace `ns` (also applied in the second cluster).
pub(crate) fn flux_manifests(ns: &str, url: &str, wait: bool) -> String {
    format!(
        r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: gitops, namespace: {ns}}}
spec:
  interval: 10m
  url: {url}
  ref: {{branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: {ns}}}
spec:
  interval: 10m
  retryInterval: 5s
  path: ./envs/staging
  prune: true
  wait: {wait}
  timeout: 1m
  sourceRef: {{kind: GitRepository, name: gitops}}
"#,
    )
}

/// Flux objects (waiting) and the Environment `staging` of `url` they apply, into
/// `s.ns`: the set-up most Flux tests start from.
pub(crate) async fn staging_with_flux(s: &Scenario, url: &str) {
    flux_objects(s, url);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", url, flux))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_applied_by_flux_goes_ready_and_kubectl_wait_returns() {
    let s = Scenario::new("ready").await;
    let url = new_repo(&s.ns, false);
    staging_with_flux(&s, &url).await;
    let start = Instant::now();
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    let (ok, out) = kubectl(
        &[
            "wait",
            "-n",
            &s.ns,
            "--for=condition=Ready",
            "release/api",
            "--timeout=120s",
        ],
        None,
    );
    assert!(ok, "kubectl wait failed: {out}\n{}", s.log_tail(30));
    println!("apply → Ready: {:.2} s", start.elapsed().as_secs_f64());
    let rel = s
        .wait_release("api", "phase Ready", |r| {
            r.status.as_ref().is_some_and(|st| st.phase == Phase::Ready)
        })
        .await;
    let st = rel.status.unwrap();
    assert_eq!(st.last_applied_version.as_deref(), Some("1.0.0"));
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Applied" && c.status == "True")
    );
    let (ok, out) = kubectl(
        &[
            "get",
            "-n",
            &s.ns,
            "deployment",
            "api",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        None,
    );
    assert!(ok && out.trim() == "1", "deployment not available: {out}");

    // A second Release in the same environment gets its own status; the first stays Ready.
    s.apply(
        &s.releases(),
        template_release("web", "staging", "web", "2.0.0"),
    )
    .await;
    let (ok, out) = kubectl(
        &[
            "wait",
            "-n",
            &s.ns,
            "--for=condition=Ready",
            "release/web",
            "--timeout=120s",
        ],
        None,
    );
    assert!(ok, "second release: {out}");
    let api = s
        .wait_release("api", "still Ready", |r| ready_is(r, "True", "Applied"))
        .await;
    assert_eq!(api.status.unwrap().phase, Phase::Ready);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_flux_cannot_apply_goes_failed_with_flux_message() {
    let s = Scenario::new("failed").await;
    let url = new_repo(&s.ns, false);
    staging_with_flux(&s, &url).await;
    let bad = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "bad"},
        "spec": {"environment": "staging", "app": "bad", "version": "1",
                 "manifests": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"}, "spec": {"ports": [{"port": 99999}]}}]}
    });
    s.apply(&s.releases(), bad).await;
    let rel = s
        .wait_release_for(
            "bad",
            "phase Failed",
            std::time::Duration::from_secs(120),
            |r| {
                r.status
                    .as_ref()
                    .is_some_and(|st| st.phase == Phase::Failed)
            },
        )
        .await;
    let ready = cond(&rel, "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "FluxFailed");
    assert!(
        ready.message.contains("99999") || ready.message.to_lowercase().contains("port"),
        "Flux's message not copied: {}",
        ready.message
    );
    assert!(cond(&rel, "Stalled").is_some_and(|c| c.status == "True"));
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_an_earlier_version_and_the_log_shows_it() {
    let s = Scenario::new("rollback").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    s.wait_release("api", "1.0.0 committed", committed).await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "2.0.0"),
    )
    .await;
    s.wait_release("api", "2.0.0 committed", |r| {
        committed(r) && r.metadata.generation == Some(2)
    })
    .await;

    let (ok, out) = tumbler(&["rollback", "api", "--to", "9.9.9", "-n", &s.ns]);
    assert!(
        !ok && out.contains("9.9.9") && out.contains("tumbler log"),
        "a missing target must be refused clearly: {out}"
    );
    let (ok, out) = tumbler(&["rollback", "api", "--to", "1.0.0", "-n", &s.ns]);
    assert!(ok, "rollback failed: {out}");
    let rel = s
        .wait_release("api", "rolled back", |r| {
            committed(r) && r.spec.version == "1.0.0"
        })
        .await;
    assert_eq!(rel.metadata.generation, Some(3));
    let clone = Clone::of(&url);
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.0.0")
    );
    let msg = clone.message("HEAD");
    assert!(
        msg.starts_with("rollback api to 1.0.0") && msg.contains("Tumbler-Action: rollback"),
        "{msg}"
    );
    // The rollback's spec patch is `tumbler rollback`'s; the releases before were the
    // harness's server-side applies (field manager `e2e`).
    assert!(
        msg.contains("Tumbler-Requested-By: tumbler-rollback"),
        "{msg}"
    );

    let (ok, out) = tumbler(&["log", "-e", "staging", "-n", &s.ns]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 entries:\n{out}");
    assert!(
        lines[1].contains("1.0.0") && lines[1].contains("rollback"),
        "{out}"
    );
    assert!(
        lines[2].contains("2.0.0") && lines[3].contains("1.0.0"),
        "{out}"
    );
    assert!(lines[0].contains("REQUESTED BY"), "{out}");
    assert!(
        lines[1].contains("tumbler-rollback") && lines[2].contains(" e2e "),
        "{out}"
    );
    // The same log from a local clone, without the cluster.
    let (ok, local) = tumbler(&[
        "log",
        "--repo",
        clone.path().to_str().unwrap(),
        "--app",
        "api",
    ]);
    assert!(ok && local.lines().count() == 4, "{local}");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_is_reported_with_its_reason() {
    let s = Scenario::new("stuck").await;
    let url = new_repo(&s.ns, false);
    // Flux applies without waiting for health; Tumbler reports the rollout itself.
    let doc = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: gitops, namespace: {ns}}}\nspec: {{interval: 10m, url: {url}, ref: {{branch: main}}}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: {ns}}}\nspec: {{interval: 10m, retryInterval: 5s, path: ./envs/staging, prune: true, sourceRef: {{kind: GitRepository, name: gitops}}}}\n",
        ns = s.ns
    );
    kubectl(&["apply", "-f", "-"], Some(&doc));
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    let mut rel = template_release("api", "staging", "api", "1.0.0");
    // Pods that can never be scheduled, and a short progress deadline.
    rel["spec"]["patches"] = json!([{"target": {"kind": "Deployment"}, "patch": "spec:\n  progressDeadlineSeconds: 3\n  template:\n    spec:\n      nodeSelector:\n        no-such-node: \"true\"\n"}]);
    s.apply(&s.releases(), rel).await;
    let rel = s
        .wait_release_for(
            "api",
            "RolloutStuck",
            std::time::Duration::from_secs(120),
            |r| cond(r, "Ready").is_some_and(|c| c.reason == "RolloutStuck"),
        )
        .await;
    let st = rel.status.unwrap();
    assert_eq!(st.phase, Phase::Failed);
    let w = &st.workloads[0];
    assert_eq!(
        (w.kind.as_str(), w.name.as_str(), w.desired, w.available),
        ("Deployment", "api", 1, 0)
    );
    let msg = w.message.clone().unwrap_or_default();
    assert!(msg.contains("ProgressDeadlineExceeded"), "{msg}");
    assert!(
        msg.contains("node") || msg.contains("schedul"),
        "pod reason missing: {msg}"
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edit_in_the_repo_shows_as_drift_until_the_next_change() {
    let s = Scenario::new("drift").await;
    let url = new_repo(&s.ns, false);
    s.apply(&s.environments(), environment("staging", &url, json!({})))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    let rel = s.wait_release("api", "committed", committed).await;
    assert_eq!(rel.status.unwrap().history.len(), 1);
    // A person edits the app folder and a file outside it.
    let clone = Clone::of(&url);
    std::fs::write(
        clone.path().join("envs/staging/api/deployment-api.yaml"),
        "edited: by hand\n",
    )
    .unwrap();
    std::fs::write(clone.path().join("NOTES.md"), "outside\n").unwrap();
    git(Some(clone.path()), &["add", "-A"]);
    git(Some(clone.path()), &["commit", "-qm", "hand edit"]);
    outside_push(clone.path());
    // Any reconcile notices (a label change does not change the spec).
    let patch = json!({"metadata": {"labels": {"poke": "1"}}});
    s.releases()
        .patch(
            "api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let rel = s
        .wait_release("api", "Drifted=True", |r| {
            cond(r, "Drifted").is_some_and(|c| c.status == "True")
        })
        .await;
    let drift = cond(&rel, "Drifted").unwrap();
    assert!(
        drift.message.contains("deployment-api.yaml") && !drift.message.contains("NOTES.md"),
        "{}",
        drift.message
    );
    assert_eq!(
        Clone::of(&url)
            .read("envs/staging/api/deployment-api.yaml")
            .as_deref(),
        Some("edited: by hand\n"),
        "Tumbler overwrote the edit without a change"
    );
    // The next change writes the rendered state again and keeps the outside file.
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.1.0"),
    )
    .await;
    let rel = s
        .wait_release("api", "1.1.0 committed", |r| {
            committed(r) && r.metadata.generation == Some(2)
        })
        .await;
    assert!(cond(&rel, "Drifted").is_none_or(|c| c.status == "False"));
    let after = Clone::of(&url);
    assert!(
        after
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.1.0")
    );
    assert_eq!(after.read("NOTES.md").as_deref(), Some("outside\n"));
    let history = rel.status.unwrap().history;
    assert_eq!(
        history
            .iter()
            .map(|h| h.version.as_str())
            .collect::<Vec<_>>(),
        ["1.1.0", "1.0.0"]
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_flux_kustomization_shows_on_environment_and_release() {
    let s = Scenario::new("noflux").await;
    let url = new_repo(&s.ns, false);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "nowhere"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "1.0.0"),
    )
    .await;
    let rel = s
        .wait_release("api", "waiting on a missing Kustomization", |r| {
            cond(r, "Ready").is_some_and(|c| c.reason == "FluxKustomizationNotFound")
        })
        .await;
    assert!(cond(&rel, "Ready").unwrap().message.contains("nowhere"));
    assert_eq!(rel.status.unwrap().phase, Phase::Committed);
    let env = s
        .wait_environment("staging", "FluxReady=False", |e| {
            e.status.as_ref().is_some_and(|st| {
                st.conditions.iter().any(|c| {
                    c.type_ == "FluxReady"
                        && c.status == "False"
                        && c.reason == "FluxKustomizationNotFound"
                })
            })
        })
        .await;
    assert!(
        tumbler::api::Conditioned::is_true(&env, "Ready"),
        "the repository itself is fine"
    );
    s.finish().await;
}

/// A chart served by the local git server's static area; returns the repository URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_release_is_ready_when_helm_controller_installed_it() {
    let s = Scenario::new("helm").await;
    let url = new_repo(&s.ns, false);
    flux_objects(&s, &url);
    let charts = serve_chart_with(&s.ns, "greeter", "0.1.0", &[GREETER]);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    let rel = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "greeter"},
        "spec": {"environment": "staging", "app": "greeter", "version": "0.1.0",
                 "helm": {"chart": {"repository": charts, "name": "greeter", "version": "0.1.0"}, "values": {"greeting": "from-tumbler"}}}
    });
    s.apply(&s.releases(), rel).await;
    let (ok, out) = kubectl(
        &[
            "wait",
            "-n",
            &s.ns,
            "--for=condition=Ready",
            "release/greeter",
            "--timeout=120s",
        ],
        None,
    );
    assert!(ok, "{out}\n{}", s.log_tail(30));
    let (ok, out) = kubectl(
        &[
            "get",
            "-n",
            &s.ns,
            "configmap",
            "greeter-settings",
            "-o",
            "jsonpath={.data.greeting}",
        ],
        None,
    );
    assert!(
        ok && out == "from-tumbler",
        "chart not installed with the Release's values: {out}"
    );
    let (_, hr) = kubectl(
        &[
            "get",
            "-n",
            &s.ns,
            "helmrelease",
            "greeter",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        None,
    );
    assert_eq!(hr, "True");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_app_mode_keeps_one_failing_app_from_hiding_the_others() {
    let s = Scenario::new("perapp").await;
    let url = new_repo(&s.ns, false);
    flux_objects_waiting(&s, &url, false);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}], "gitRepository": {"name": "gitops"}, "perApp": true}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    let bad = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "bad"},
        "spec": {"environment": "staging", "app": "bad", "version": "1",
                 "manifests": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"}, "spec": {"ports": [{"port": 99999}]}}]}
    });
    s.apply(&s.releases(), bad).await;
    s.apply(
        &s.releases(),
        template_release("good", "staging", "good", "1.0.0"),
    )
    .await;
    let (ok, out) = kubectl(
        &[
            "wait",
            "-n",
            &s.ns,
            "--for=condition=Ready",
            "release/good",
            "--timeout=120s",
        ],
        None,
    );
    assert!(
        ok,
        "the good app is hidden by the bad one: {out}\n{}",
        s.log_tail(30)
    );
    let bad = s
        .wait_release_for("bad", "Failed", std::time::Duration::from_secs(120), |r| {
            r.status
                .as_ref()
                .is_some_and(|st| st.phase == Phase::Failed)
        })
        .await;
    assert!(
        cond(&bad, "Ready").unwrap().message.contains("staging-bad"),
        "{}",
        cond(&bad, "Ready").unwrap().message
    );
    let clone = Clone::of(&url);
    let k = clone.read("envs/staging/kustomization.yaml").unwrap();
    assert!(
        k.contains("good/flux-kustomization.yaml") && k.contains("bad/flux-kustomization.yaml"),
        "{k}"
    );

    // Turning the mode off writes the plain layout again.
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}], "gitRepository": {"name": "gitops"}, "perApp": false}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let c = Clone::of(&url);
        let k = c.read("envs/staging/kustomization.yaml").unwrap();
        if !c.exists("envs/staging/good/flux-kustomization.yaml")
            && k.lines().any(|l| l.trim() == "- good")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "per-app files not cleaned up:\n{k}\n{}",
            s.log_tail(20)
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    s.finish().await;
}
