//! Several clusters: an Environment in this (management) cluster whose Flux runs in the
//! second control plane of the harness (`e2e/cluster.sh up` starts it). Tumbler reads that
//! cluster with a ServiceAccount token bound by the shipped least-privilege manifest
//! (`config/remote/rbac.yaml`). The test stops the second API server to see the Environment
//! and its Release say so, and starts it again (also when the test fails: a guard).

use std::time::Duration;

use std::time::Instant;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tumbler::api::{Environment, Phase, find_condition};

use crate::harness::*;

/// kubectl against the second (workload) cluster, as its admin.
fn remote_kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let kubeconfig = harness_var("TUMBLER_REMOTE_KUBECONFIG");
    let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
    all.extend_from_slice(args);
    kubectl(&all, stdin)
}

/// The second cluster's API server, stopped on demand and always started again on drop, so
/// that a failing test does not leave it down for the next one.
struct RemoteApiServer {
    stopped: bool,
}

impl RemoteApiServer {
    fn run(what: &str) -> (bool, String) {
        let script = repo_root().join("e2e/cluster.sh");
        run_cmd(script.to_str().unwrap(), &["remote-apiserver", what], None)
    }

    fn stop(&mut self) {
        self.stopped = true;
        let (ok, out) = Self::run("stop");
        assert!(ok, "stopping the second API server: {out}");
    }

    fn start(&mut self) {
        let (ok, out) = Self::run("start");
        assert!(ok, "starting the second API server: {out}");
        self.stopped = false;
    }
}

impl Drop for RemoteApiServer {
    fn drop(&mut self) {
        if self.stopped {
            let (ok, out) = Self::run("start");
            if !ok {
                eprintln!("could not start the second API server again: {out}");
            }
        }
    }
}

/// A kubeconfig for the workload cluster as its operator would build it: the shipped RBAC
/// applied there, a token of its ServiceAccount, the cluster's CA inline. Returns it and the
/// token (which must never show up in the management cluster's statuses, Events or logs).
fn workload_kubeconfig() -> (String, String) {
    let manifest = repo_root().join("config/remote/rbac.yaml");
    let (ok, out) = remote_kubectl(&["apply", "-f", manifest.to_str().unwrap()], None);
    assert!(ok, "applying config/remote/rbac.yaml: {out}");
    let (ok, token) = remote_kubectl(
        &[
            "-n",
            "tumbler-remote",
            "create",
            "token",
            "tumbler",
            "--duration",
            "1h",
        ],
        None,
    );
    assert!(ok && !token.trim().is_empty(), "create token: {token}");
    let token = token.trim().to_string();
    let (ok, ca) = remote_kubectl(
        &[
            "config",
            "view",
            "--raw",
            "--flatten",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ],
        None,
    );
    assert!(
        ok && !ca.trim().is_empty(),
        "CA of the second cluster: {ca}"
    );
    let server = harness_var("TUMBLER_REMOTE_SERVER");
    let kubeconfig = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: workload
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: tumbler
  user:
    token: {token}
contexts:
- name: workload
  context: {{cluster: workload, user: tumbler}}
current-context: workload
",
        ca = ca.trim()
    );
    (kubeconfig, token)
}

/// The GitRepository and Kustomization that apply `envs/staging`, in the workload cluster.
fn remote_flux_objects(ns: &str, url: &str) {
    let (ok, out) = remote_kubectl(&["create", "namespace", ns], None);
    assert!(ok, "namespace in the second cluster: {out}");
    let doc = crate::flux::flux_manifests(ns, url, true);
    let (ok, out) = remote_kubectl(&["apply", "-f", "-"], Some(&doc));
    assert!(ok, "Flux objects in the second cluster: {out}");
}

fn env_condition(env: &Environment, type_: &str) -> Option<(String, String, String)> {
    env.status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn reachable_is(env: &Environment, status: &str) -> bool {
    env_condition(env, "ClusterReachable").is_some_and(|(s, _, _)| s == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_whose_flux_runs_in_another_cluster_reports_from_there() {
    let s = Scenario::new("clusters").await;
    let mut apiserver = RemoteApiServer { stopped: false };
    let url = new_repo(&s.ns, false);
    remote_flux_objects(&s.ns, &url);
    let (kubeconfig, token) = workload_kubeconfig();
    s.secret("workload", &[("kubeconfig", &kubeconfig)]).await;
    let spec = json!({
        "flux": {"kustomizations": [{"name": "apps"}]},
        "cluster": {"kubeconfigSecretRef": {"name": "workload"}},
    });
    s.apply(&s.environments(), environment("staging", &url, spec))
        .await;
    let env = s
        .wait_environment("staging", "ClusterReachable=True", |e| {
            reachable_is(e, "True")
        })
        .await;
    let (_, reason, _) = env_condition(&env, "ClusterReachable").unwrap();
    assert_eq!(reason, "ClusterReachable");

    // Ready through the second cluster's Flux and workloads; nothing of it runs here.
    let start = Instant::now();
    s.release("api", "staging", "1.0.0").await;
    let rel = s
        .wait_release_for("api", "phase Ready", Duration::from_secs(120), |r| {
            r.status.as_ref().is_some_and(|st| st.phase == Phase::Ready)
                && ready_is(r, "True", "Applied")
        })
        .await;
    println!(
        "apply → Ready through the second cluster: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(
        rel.status.unwrap().last_applied_version.as_deref(),
        Some("1.0.0")
    );
    let (ok, out) = remote_kubectl(
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
    assert!(
        ok && out.trim() == "1",
        "deployment in the second cluster: {out}"
    );
    let (ok, _) = kubectl(&["get", "-n", &s.ns, "deployment", "api"], None);
    assert!(!ok, "the app must not run in the management cluster");

    // The workload cluster goes away: the Environment says so, the Release waits (Unknown),
    // never Ready from what it saw before.
    let start = Instant::now();
    apiserver.stop();
    let env = s
        .wait_environment("staging", "ClusterReachable=False", |e| {
            reachable_is(e, "False")
        })
        .await;
    let (_, reason, message) = env_condition(&env, "ClusterReachable").unwrap();
    assert_eq!(reason, "ClusterUnreachable", "{message}");
    assert!(
        message.contains(&harness_var("TUMBLER_REMOTE_SERVER")),
        "the message names the cluster: {message}"
    );
    let rel = s
        .wait_release_for(
            "api",
            "Ready=Unknown ClusterUnreachable",
            Duration::from_secs(120),
            |r| ready_is(r, "Unknown", "ClusterUnreachable"),
        )
        .await;
    println!(
        "API server stopped → Release Ready=Unknown: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let st = rel.status.clone().unwrap();
    assert_eq!(st.phase, Phase::Committed);
    assert!(cond(&rel, "Reconciling").is_some_and(|c| c.status == "True"));

    // The token shows nowhere: statuses, Events, the controller's log.
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns);
    let events = events.list(&ListParams::default()).await.unwrap();
    let seen = format!(
        "{}{}{}{}",
        serde_json::to_string(&st).unwrap(),
        serde_json::to_string(&env.status).unwrap(),
        serde_json::to_string(&events.items).unwrap(),
        std::fs::read_to_string(&s.log).unwrap_or_default()
    );
    assert!(
        !seen.contains(&token),
        "the workload cluster's token leaked"
    );
    assert!(
        !seen.contains(&token[token.len() - 20..]),
        "part of the token leaked"
    );

    // Back again: Ready comes back by itself.
    let start = Instant::now();
    apiserver.start();
    s.wait_environment("staging", "ClusterReachable=True again", |e| {
        reachable_is(e, "True")
    })
    .await;
    s.wait_release_for("api", "Ready again", Duration::from_secs(120), |r| {
        r.status.as_ref().is_some_and(|st| st.phase == Phase::Ready)
            && ready_is(r, "True", "Applied")
    })
    .await;
    println!(
        "API server started → Release Ready again: {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // What the second cluster's Flux cannot apply fails with Flux's message.
    let bad = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release", "metadata": {"name": "bad"},
        "spec": {"environment": "staging", "app": "bad", "version": "1",
                 "manifests": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"}, "spec": {"ports": [{"port": 99999}]}}]}
    });
    s.apply(&s.releases(), bad).await;
    let rel = s
        .wait_release_for("bad", "phase Failed", Duration::from_secs(120), |r| {
            r.status
                .as_ref()
                .is_some_and(|st| st.phase == Phase::Failed)
        })
        .await;
    let ready = cond(&rel, "Ready").unwrap();
    assert_eq!(ready.reason, "FluxFailed");
    assert!(
        ready.message.contains("99999") || ready.message.to_lowercase().contains("port"),
        "Flux's message not copied: {}",
        ready.message
    );

    // A rotated kubeconfig is used from the next reconcile on; one that would run a command
    // is refused, and says so without quoting the Secret.
    let exec = kubeconfig.replace(
        &format!("    token: {token}\n"),
        "    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}\n",
    );
    assert_ne!(exec, kubeconfig);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.ns);
    s.apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "workload"},
               "stringData": {"kubeconfig": exec}}),
    )
    .await;
    // Any change re-queues the Environment at once instead of at its next poll.
    s.environments()
        .patch(
            "staging",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"e2e/rotated": "1"}}})),
        )
        .await
        .unwrap();
    let env = s
        .wait_environment("staging", "InvalidKubeconfig", |e| {
            env_condition(e, "ClusterReachable")
                .is_some_and(|(s, r, _)| s == "False" && r == "InvalidKubeconfig")
        })
        .await;
    let (_, _, message) = env_condition(&env, "ClusterReachable").unwrap();
    assert!(message.contains("exec"), "{message}");
    assert!(!message.contains("/bin/sh"), "{message}");

    let ns = s.ns.clone();
    s.finish().await;
    let _ = remote_kubectl(&["delete", "namespace", &ns, "--wait=false"], None);
}
