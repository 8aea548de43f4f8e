//! The loop closed with real Flux controllers: Ready when Flux applied the commit, Failed
//! with Flux's message when it could not; rollback and the release log.

use std::process::Command;
use std::time::Instant;

use serde_json::json;
use tumbler::api::Phase;

use crate::harness::*;

fn flux_objects(s: &Scenario, url: &str) {
    let doc = format!(
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
  wait: true
  timeout: 1m
  sourceRef: {{kind: GitRepository, name: gitops}}
"#,
        ns = s.ns
    );
    kubectl(&["apply", "-f", "-"], Some(&doc));
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl on PATH (source .tumbler-dev/env)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn tumbler(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tumbler"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_applied_by_flux_goes_ready_and_kubectl_wait_returns() {
    let s = Scenario::new("ready").await;
    let url = new_repo(&s.ns, false);
    flux_objects(&s, &url);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
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
    flux_objects(&s, &url);
    let flux = json!({"targetNamespace": s.ns, "flux": {"kustomizations": [{"name": "apps"}]}});
    s.apply(&s.environments(), environment("staging", &url, flux))
        .await;
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
    s.wait_release("api", "1.0.0 committed", |r| {
        ready_is(r, "True", "Committed")
    })
    .await;
    s.apply(
        &s.releases(),
        template_release("api", "staging", "api", "2.0.0"),
    )
    .await;
    s.wait_release("api", "2.0.0 committed", |r| {
        ready_is(r, "True", "Committed") && r.metadata.generation == Some(2)
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
            ready_is(r, "True", "Committed") && r.spec.version == "1.0.0"
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
