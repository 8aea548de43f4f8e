//! Real containers on the local cluster's real node (e2e/node.sh: containerd + runc +
//! kubelet, images built here without Docker): the chart installed with `helm install`
//! runs the controller as two pods (leader election, probes, read-only root filesystem,
//! its git cache volume); a Release applied through them reaches Ready with real pods of a
//! real test image; deleting the leader pod hands over with nothing lost; and an image
//! that cannot be pulled is reported as RolloutStuck with the kubelet's reason.
//!
//! Pods for the real node tolerate its taint and select it (`type=real`); everything else
//! stays on kwok's node. The in-cluster controller watches only its test's namespace, so
//! it never competes with the controllers the other tests run.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use tumbler::api::{Phase, Release};

use crate::harness::*;

/// The patch that puts an app's pods on the real node.
const ON_REAL_NODE: &str = "spec:\n  template:\n    spec:\n      nodeSelector:\n        type: real\n      tolerations:\n      - {key: tumbler.dev/node, operator: Equal, value: real, effect: NoSchedule}\n";

/// A Release of the test HTTP server image (`serve` on 8080, readiness on `/`), on the
/// real node; `tag` is the image tag.
fn testapp_release(name: &str, env: &str, version: &str, tag: &str) -> serde_json::Value {
    let image = harness_var("TUMBLER_NODE_TESTAPP_IMAGE");
    let (repository, _) = image.rsplit_once(':').unwrap();
    let mut rel = template_release(name, env, name, version);
    merge(
        &mut rel["spec"]["template"],
        json!({
            "image": {"repository": repository, "tag": tag},
            "probes": {"readiness": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2}}
        }),
    );
    rel["spec"]["patches"] = json!([{"target": {"kind": "Deployment"}, "patch": ON_REAL_NODE}]);
    rel
}

/// A GitRepository and a Kustomization applying `envs/staging` of `url`, waiting for health.
fn flux_objects(ns: &str, url: &str) {
    let doc = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: gitops, namespace: {ns}}}\nspec: {{interval: 10m, url: {url}, ref: {{branch: main}}}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: {ns}}}\nspec: {{interval: 10m, retryInterval: 5s, path: ./envs/staging, prune: true, wait: true, timeout: 2m, sourceRef: {{kind: GitRepository, name: gitops}}}}\n"
    );
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&doc));
    assert!(ok, "{out}");
}

/// The pods of `ns` matching `selector`.
async fn pods(s: &Scenario, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(s.client.clone(), &s.ns);
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What the node's container logs hold for the pods of `ns` (kubelet writes them under the
/// cluster's state dir), for failure messages.
fn node_pod_logs(ns: &str) -> String {
    let dir = repo_root().join(".tumbler-dev/node/pod-logs");
    let mut out = String::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with(&format!("{ns}_")) {
            continue;
        }
        for c in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(c.path()).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!(
                    "--- {name}/{} ---\n{}\n",
                    f.path().display(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                ));
            }
        }
    }
    out
}

/// Polls the pods of `selector` until `done` holds for the list, or fails with their states.
async fn wait_pods(
    s: &Scenario,
    selector: &str,
    what: &str,
    done: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = pods(s, selector).await;
        if done(&list) {
            return list;
        }
        if Instant::now() > deadline {
            let states: Vec<_> = list
                .iter()
                .map(|p| (p.metadata.name.clone(), p.status.clone()))
                .collect();
            panic!(
                "pods {selector} in {}: timed out waiting for {what}\n{}\n{}",
                s.ns,
                serde_json::to_string_pretty(&states).unwrap(),
                node_pod_logs(&s.ns)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `helm uninstall` when the test ends, passed or not: the chart's cluster-scoped objects
/// must not outlive it.
struct Uninstall(String, String);

impl Drop for Uninstall {
    fn drop(&mut self) {
        let (ok, out) = run_cmd(
            "helm",
            &["uninstall", &self.0, "-n", &self.1, "--wait"],
            None,
        );
        if !ok {
            eprintln!("helm uninstall {}: {out}", self.0);
        }
    }
}

async fn lease_holder(s: &Scenario) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), &s.ns);
    leases
        .get_opt("tumbler-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|sp| sp.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn wait_ready_version(s: &Scenario, name: &str, version: &str) -> Release {
    let version = version.to_string();
    s.wait_release_for(
        name,
        &format!("Ready at {version}"),
        Duration::from_secs(180),
        move |r| {
            r.status.as_ref().is_some_and(|st| {
                st.phase == Phase::Ready
                    && st.last_applied_version.as_deref() == Some(version.as_str())
            }) && ready_is(r, "True", "Applied")
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installed_controller_runs_as_pods_and_hands_over_leadership() {
    let node = harness_var("TUMBLER_NODE");
    let image = harness_var("TUMBLER_NODE_IMAGE");
    let s = Scenario::bare("node").await;
    let (repository, tag) = image.rsplit_once(':').unwrap();
    let helm_release = format!("t-{}", s.ns);
    let values = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        values.path(),
        serde_json::to_string(&json!({
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "replicas": 2,
            "leaderElection": {"leaseSeconds": 6},
            "watchNamespaces": [s.ns],
            "logFormat": "text",
            "nodeSelector": {"type": "real"},
            "tolerations": [{"key": "tumbler.dev/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}],
            "tests": {"enabled": false},
            // The aggregated ClusterRoles have fixed names: one installation at a time.
            "rbac": {"aggregateToDefaultRoles": false}
        }))
        .unwrap(),
    )
    .unwrap();
    let (ok, out) = run_cmd(
        "helm",
        &[
            "install",
            &helm_release,
            "charts/tumbler",
            "-n",
            &s.ns,
            "--skip-crds",
            "-f",
            values.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "helm install: {out}");
    let uninstall = Uninstall(helm_release.clone(), s.ns.clone());

    // Two controller pods on the real node, Ready (their readiness probe answers), never
    // restarted (liveness), root filesystem read-only, the git cache an emptyDir.
    let selector = format!("app.kubernetes.io/instance={helm_release}");
    let started = Instant::now();
    let ctl = wait_pods(&s, &selector, "2 Ready controller pods", |ps| {
        ps.len() == 2 && ps.iter().all(is_ready)
    })
    .await;
    println!(
        "helm install → 2 controller pods Ready: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for p in &ctl {
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(node.as_str()));
        let c = &spec.containers[0];
        assert_eq!(c.image.as_deref(), Some(image.as_str()));
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert!(c.readiness_probe.is_some() && c.liveness_probe.is_some());
        let cache = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "git-cache")
            .expect("git-cache volume");
        assert!(cache.empty_dir.is_some());
        let st = p.status.as_ref().unwrap();
        let cs = &st.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready && cs.restart_count == 0, "{cs:?}");
        assert!(cs.state.as_ref().unwrap().running.is_some(), "{cs:?}");
    }
    let names: Vec<String> = ctl
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        if let Some(h) = lease_holder(&s).await {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "no leader\n{}",
            node_pod_logs(&s.ns)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        names.contains(&leader),
        "leader {leader} is not one of {names:?}"
    );

    // A Release through the in-cluster controller: pods reach the git server at the node's
    // gateway address (Flux, on the host, uses the same URL).
    let host_url = new_repo(&s.ns, false);
    let url = host_url.replace(
        &harness_var("TUMBLER_GIT_URL"),
        &harness_var("TUMBLER_NODE_GIT_URL"),
    );
    assert_ne!(url, host_url);
    flux_objects(&s.ns, &url);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    let applied = Instant::now();
    s.apply(
        &s.releases(),
        testapp_release("web", "staging", "1.0.0", "1"),
    )
    .await;
    wait_ready_version(&s, "web", "1.0.0").await;
    println!(
        "apply → Ready with real pods: {:.1} s",
        applied.elapsed().as_secs_f64()
    );
    let web = wait_pods(&s, "app.kubernetes.io/name=web", "a Ready web pod", |ps| {
        ps.len() == 1 && ps.iter().all(is_ready)
    })
    .await;
    let p = &web[0];
    assert_eq!(
        p.spec.as_ref().unwrap().node_name.as_deref(),
        Some(node.as_str())
    );
    // The pod really serves: its address on the node's bridge answers.
    let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
    let (ok, body) = run_cmd(
        "curl",
        &["-sf", "--max-time", "5", &format!("http://{ip}:8080/")],
        None,
    );
    assert!(ok && body.starts_with("ok "), "GET pod {ip}: {body}");

    // The leader pod is deleted; a change made right away is done by the other one.
    let pods_api: Api<Pod> = Api::namespaced(s.client.clone(), &s.ns);
    pods_api
        .delete(&leader, &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();
    let mut next = testapp_release("web", "staging", "1.0.1", "1");
    next["spec"]["template"]["env"] = json!({"GREETING": "handed over"});
    s.apply(&s.releases(), next).await;
    let rel = wait_ready_version(&s, "web", "1.0.1").await;
    println!(
        "leader deleted → change Ready under the new leader: {:.1} s",
        deleted.elapsed().as_secs_f64()
    );
    let holder = lease_holder(&s).await.expect("a leader");
    assert_ne!(holder, leader, "the deleted pod still leads");
    // Nothing lost: both versions in the history and in git.
    let history: Vec<String> = rel
        .status
        .unwrap()
        .history
        .iter()
        .map(|h| h.version.clone())
        .collect();
    assert!(
        history.contains(&"1.0.0".to_string()) && history.contains(&"1.0.1".to_string()),
        "{history:?}"
    );
    let clone = Clone::of(&host_url);
    let app_dir = clone.path().join("envs/staging/web");
    let files: Vec<String> = std::fs::read_dir(&app_dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        files.iter().any(|f| f.contains("handed over")),
        "the 1.0.1 change is not in git: {files:?}"
    );
    // The Deployment replaced by two replicas again (one new pod).
    wait_pods(&s, &selector, "2 Ready controller pods again", |ps| {
        ps.len() == 2 && ps.iter().all(is_ready)
    })
    .await;

    drop(uninstall);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_that_cannot_be_pulled_is_reported_as_rollout_stuck() {
    let _ = harness_var("TUMBLER_NODE");
    let s = Scenario::new("pullfail").await;
    let url = new_repo(&s.ns, false);
    let doc = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: gitops, namespace: {ns}}}\nspec: {{interval: 10m, url: {url}, ref: {{branch: main}}}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: {ns}}}\nspec: {{interval: 10m, retryInterval: 5s, path: ./envs/staging, prune: true, sourceRef: {{kind: GitRepository, name: gitops}}}}\n",
        ns = s.ns
    );
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&doc));
    assert!(ok, "{out}");
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
    // A tag that does not exist: nothing can be pulled here, so the kubelet backs off.
    let mut rel = testapp_release("api", "staging", "1.0.0", "no-such-tag");
    rel["spec"]["patches"] = json!([{"target": {"kind": "Deployment"}, "patch": format!("spec:\n  progressDeadlineSeconds: 10\n{}", &ON_REAL_NODE["spec:\n".len()..])}]);
    s.apply(&s.releases(), rel).await;
    let rel = s
        .wait_release_for("api", "RolloutStuck", Duration::from_secs(150), |r| {
            cond(r, "Ready").is_some_and(|c| c.reason == "RolloutStuck")
        })
        .await;
    let st = rel.status.unwrap();
    assert_eq!(st.phase, Phase::Failed);
    let w = &st.workloads[0];
    assert_eq!(
        (w.kind.as_str(), w.desired, w.available),
        ("Deployment", 1, 0)
    );
    let msg = w.message.clone().unwrap_or_default();
    assert!(
        msg.contains("ImagePullBackOff") || msg.contains("ErrImagePull"),
        "the kubelet's reason is missing: {msg}"
    );
    // The pod is on the real node, waiting on the pull.
    let ps = pods(&s, "app.kubernetes.io/name=api").await;
    assert!(
        ps.iter()
            .all(|p| p.spec.as_ref().unwrap().node_name.as_deref()
                == Some(harness_var("TUMBLER_NODE").as_str())),
        "not on the real node"
    );
    s.finish().await;
}
