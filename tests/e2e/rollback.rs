//! A developer who may only get, list, watch and patch Releases reads the release log and
//! rolls back: `tumbler log` falls back to the history in the Releases' status, and
//! `tumbler rollback` asks the controller (the `tumbler.dev/rollback-to` annotation), which
//! reads the old spec from git with the Environment's credentials.

use kube::ResourceExt;
use serde_json::{Value, json};

use crate::harness::*;

/// A ServiceAccount `dev` in the scenario's namespace allowed only get/list/watch/patch on
/// Releases, and a kubeconfig that authenticates as it.
fn developer(ns: &str) -> std::path::PathBuf {
    let docs = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "dev", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "release-patcher", "namespace": ns},
         "rules": [{"apiGroups": ["tumbler.dev"], "resources": ["releases"],
                    "verbs": ["get", "list", "watch", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "dev", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "release-patcher"},
         "subjects": [{"kind": "ServiceAccount", "name": "dev", "namespace": ns}]},
    ]});
    let (ok, out) = kubectl(
        &["apply", "-f", "-"],
        Some(&serde_json::to_string(&docs).unwrap()),
    );
    assert!(ok, "{out}");
    service_account_kubeconfig(ns, "dev")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_with_only_release_access_reads_the_log_and_rolls_back() {
    let s = Scenario::new("devroll").await;
    // Credentials in a Secret the developer may not read.
    let url = s.private_repo_and_environment("staging").await;
    s.release("api", "staging", "1.0.0").await;
    s.wait_release("api", "1.0.0 committed", committed).await;
    s.release("api", "staging", "2.0.0").await;
    s.wait_release("api", "2.0.0 committed", |r| {
        committed(r) && r.metadata.generation == Some(2)
    })
    .await;
    let kc = developer(&s.ns);
    let kc = kc.to_str().unwrap();
    let who = format!("system:serviceaccount:{}:dev", s.ns);
    for (verb, what) in [
        ("get", "secrets"),
        ("get", "environments"),
        ("update", "releases"),
    ] {
        let (ok, out) = kubectl(
            &["auth", "can-i", verb, what, "-n", &s.ns, "--as", &who],
            None,
        );
        assert!(!ok && out.trim() == "no", "{verb} {what}: {out}");
    }

    // The log of the namespace: not from git (forbidden), from the Releases' status, said
    // on stderr; newest first.
    let (ok, out) = tumbler(&["--kubeconfig", kc, "log", "-o", "json"]);
    assert!(ok, "{out}");
    assert!(out.contains("you may not list environments"), "{out}");
    let json_start = out.find('[').unwrap();
    let rows: Value = serde_json::from_str(
        out[json_start..]
            .rsplit_once(']')
            .map(|(a, _)| format!("{a}]"))
            .unwrap()
            .as_str(),
    )
    .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    let versions: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entry"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2.0.0", "1.0.0"], "{out}");
    let clone = Clone::of(&with_credentials(&url));
    assert_eq!(rows[0]["entry"]["commit"], clone.head(), "{out}");
    assert_eq!(rows[0]["entry"]["release"], format!("{}/api", s.ns));
    assert_eq!(
        rows[0]["environment"],
        json!({"namespace": s.ns, "name": "staging"})
    );
    // `log RELEASE` and `-a APP` read the same, as a table.
    for args in [
        &["log", "api"][..],
        &["log", "-a", "api", "--from", "status"],
    ] {
        let mut all = vec!["--kubeconfig", kc];
        all.extend_from_slice(args);
        let (ok, out) = tumbler(&all);
        assert!(ok, "{args:?}: {out}");
        let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("tumbler:")).collect();
        assert_eq!(lines.len(), 3, "header + 2 versions: {args:?}\n{out}");
        assert!(
            lines[1].contains("2.0.0") && lines[2].contains("1.0.0"),
            "{out}"
        );
    }
    // Forcing git is refused by the API server, clearly.
    let (ok, out) = tumbler(&["--kubeconfig", kc, "log", "-e", "staging", "--from", "git"]);
    assert!(!ok && out.contains("forbidden"), "{out}");

    // A version that is not in the log: refused by the controller, which says why on the
    // Release and drops the request.
    let (ok, out) = tumbler(&["--kubeconfig", kc, "rollback", "api", "--to", "9.9.9"]);
    assert!(
        !ok && out.contains("9.9.9")
            && out.contains("RollbackNotFound")
            && out.contains("tumbler log"),
        "{out}"
    );
    let rel = s.releases().get("api").await.unwrap();
    assert_eq!(rel.spec.version, "2.0.0");
    assert!(
        !rel.annotations()
            .contains_key(tumbler::api::ROLLBACK_TO_ANNOTATION)
    );
    let c = cond(&rel, "RolledBack").expect("RolledBack condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "RollbackNotFound")
    );
    assert!(
        s.event_reasons("Release", "api")
            .await
            .contains(&"RollbackNotFound".to_string())
    );

    // The rollback: the controller reads 1.0.0's spec from git and the commit lands.
    let (ok, out) = tumbler(&["--kubeconfig", kc, "rollback", "api", "--to", "1.0.0"]);
    assert!(ok, "{out}");
    assert!(out.contains("rolled back from 2.0.0 to 1.0.0"), "{out}");
    let rel = s
        .wait_release("api", "rolled back", |r| {
            committed(r) && r.spec.version == "1.0.0"
        })
        .await;
    assert_eq!(rel.metadata.generation, Some(3));
    assert_eq!(
        rel.annotations()
            .get(tumbler::api::ROLLBACK_ANNOTATION)
            .map(String::as_str),
        Some("2.0.0 -> 1.0.0")
    );
    assert!(cond(&rel, "RolledBack").is_some_and(|c| c.status == "True"));
    let clone = Clone::of(&with_credentials(&url));
    assert!(
        clone
            .read("envs/staging/api/deployment-api.yaml")
            .unwrap()
            .contains("demo:1.0.0")
    );
    let msg = clone.message("HEAD");
    assert!(
        msg.starts_with("rollback api to 1.0.0")
            && msg.contains("Tumbler-Action: rollback")
            && msg.contains("Tumbler-Requested-By: tumbler-rollback"),
        "{msg}"
    );
    // The developer's log shows it on top.
    let (ok, out) = tumbler(&["--kubeconfig", kc, "log", "api"]);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.contains("1.0.0") && l.contains("tumbler-rollback")),
        "{out}"
    );
    s.finish().await;
}
