//! The trust boundary, played as the real scene: a platform admin keeps Environment
//! `production` and its credentials in the platform namespace and admits labelled team
//! namespaces; a team's CI identity, allowed only to manage Releases in its namespace,
//! releases an app that reaches Ready through Flux (applied as the team's service account),
//! cannot read any Secret, and every escape it tries ends with a named reason.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use tumbler::api::Release;

use crate::harness::*;

/// Creates a namespace with labels (deleted by [`drop_namespaces`]).
async fn namespace(s: &Scenario, name: &str, labels: Value) {
    let api: Api<Namespace> = Api::all(s.client.clone());
    let mut all = json!({"tumbler.dev/e2e": "true"});
    merge(&mut all, labels);
    let body: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": all}})).unwrap();
    api.create(&PostParams::default(), &body)
        .await
        .expect("create namespace");
}

async fn drop_namespaces(s: &Scenario, names: &[&str]) {
    let api: Api<Namespace> = Api::all(s.client.clone());
    for n in names {
        let _ = api.delete(n, &DeleteParams::default()).await;
    }
}

/// What the platform admin sets up in a team namespace: the CI identity (Releases only) and
/// the account Flux impersonates there (the built-in `edit` role).
fn team_objects(team: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: ci, namespace: {team}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: release-ci, namespace: {team}}}
rules:
  - apiGroups: [tumbler.dev]
    resources: [releases]
    verbs: [create, get, list, watch, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: release-ci, namespace: {team}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: release-ci}}
subjects: [{{kind: ServiceAccount, name: ci, namespace: {team}}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: flux-apply, namespace: {team}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: flux-apply, namespace: {team}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}
subjects: [{{kind: ServiceAccount, name: flux-apply, namespace: {team}}}]
---
# Flux's own kinds for Helm sources (Flux's install aggregates these into `edit`).
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: flux-helm, namespace: {team}}}
rules:
  - apiGroups: [source.toolkit.fluxcd.io]
    resources: [helmrepositories, ocirepositories]
    verbs: ["*"]
  - apiGroups: [helm.toolkit.fluxcd.io]
    resources: [helmreleases]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: flux-helm, namespace: {team}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: flux-helm}}
subjects: [{{kind: ServiceAccount, name: flux-apply, namespace: {team}}}]
"#
    )
}

/// The Flux objects that apply the Environment's folder, owned by the platform.
fn platform_flux(ns: &str, url: &str) -> String {
    format!(
        r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: gitops, namespace: {ns}}}
spec:
  interval: 10m
  url: {url}
  ref: {{branch: main}}
  secretRef: {{name: creds}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: {ns}}}
spec:
  interval: 10m
  retryInterval: 5s
  path: ./envs/production
  prune: true
  timeout: 1m
  sourceRef: {{kind: GitRepository, name: gitops}}
"#
    )
}

/// A cluster-scoped custom resource kind, to check scope comes from discovery.
const CLUSTER_THING_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clusterthings.e2e.tumbler.dev}
spec:
  group: e2e.tumbler.dev
  scope: Cluster
  names: {kind: ClusterThing, plural: clusterthings, singular: clusterthing}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

/// Applies a document as the CI identity of `team`.
fn as_ci(team: &str, doc: &Value) -> (bool, String) {
    let who = format!("system:serviceaccount:{team}:ci");
    kubectl(
        &["--as", &who, "-n", team, "apply", "-f", "-"],
        Some(&serde_json::to_string(doc).unwrap()),
    )
}

/// A Release for Environment `production` of the platform namespace: the app template,
/// unless `spec` brings manifests.
fn release(s: &Scenario, name: &str, spec: Value) -> Value {
    let mut doc = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": name, "labels": s.label()},
        "spec": {"environment": "production", "environmentNamespace": s.ns, "app": name,
            "version": "1.0.0"}
    });
    if spec.get("manifests").is_none() && spec.get("helm").is_none() {
        doc["spec"]["template"] =
            json!({"image": {"repository": "registry.example.com/demo", "tag": "1.0.0"}});
    }
    merge(&mut doc["spec"], spec);
    doc
}

fn in_team(s: &Scenario, team: &str) -> Api<Release> {
    Api::namespaced(s.client.clone(), team)
}

async fn wait_reason(s: &Scenario, team: &str, name: &str, reason: &str) -> Release {
    let api = in_team(s, team);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(rel)) = api.get_opt(name).await
            && ready_is(&rel, "False", reason)
        {
            return rel;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{team}/{name}: no {reason}: {:?}\n{}",
            api.get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.status),
            s.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_release_into_a_platform_environment_and_every_escape_is_refused() {
    let mut s = Scenario::bare("tenancy").await;
    let (team, other, outsider) = (
        format!("{}-a", s.ns),
        format!("{}-b", s.ns),
        format!("{}-x", s.ns),
    );
    namespace(&s, &team, json!({"tumbler.dev/tenant": "true"})).await;
    namespace(&s, &other, json!({"tumbler.dev/tenant": "true"})).await;
    namespace(&s, &outsider, json!({})).await;
    for t in [&team, &other, &outsider] {
        let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&team_objects(t)));
        assert!(ok, "{out}");
    }
    // The platform: a private repository, its credentials, Flux, and the Environment.
    let url = new_repo(&s.ns, true);
    s.secret(
        "creds",
        &[
            ("username", &harness_var("TUMBLER_GIT_USERNAME")),
            ("password", &harness_var("TUMBLER_GIT_PASSWORD")),
        ],
    )
    .await;
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&platform_flux(&s.ns, &url)));
    assert!(ok, "{out}");
    let mut env = environment(
        "production",
        &url,
        json!({
            "repository": {"secretRef": {"name": "creds"}, "insecure": true},
            "flux": {"kustomizations": [{"name": "apps"}], "perApp": true,
                     "gitRepository": {"name": "gitops"}},
            "releases": {
                "namespaces": {"from": "Selector", "selector": {"matchLabels": {"tumbler.dev/tenant": "true"}}},
                "serviceAccountName": "flux-apply"
            }
        }),
    );
    env["metadata"]["labels"] = s.label();
    s.apply(&s.environments(), env).await;
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(CLUSTER_THING_CRD));
    assert!(ok, "{out}");
    let (ok, out) = kubectl(
        &[
            "wait",
            "--for",
            "condition=Established",
            "crd/clusterthings.e2e.tumbler.dev",
            "--timeout=60s",
        ],
        None,
    );
    assert!(ok, "{out}");
    s.start_cluster_wide_controller();

    // The CI identity releases; Flux applies it as the team's account; Ready.
    let (ok, out) = as_ci(&team, &release(&s, "api", json!({})));
    assert!(ok, "the CI identity could not create its Release: {out}");
    let (ok, out) = kubectl(
        &[
            "wait",
            "-n",
            &team,
            "--for=condition=Ready",
            "release/api",
            "--timeout=150s",
        ],
        None,
    );
    assert!(ok, "not Ready: {out}\n{}", s.log_tail(40));
    let (ok, out) = kubectl(
        &[
            "get",
            "deployment",
            "api",
            "-n",
            &team,
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        None,
    );
    assert!(
        ok && out.trim() == "1",
        "the Deployment runs in the team's namespace: {out}"
    );
    // The per-app Kustomization lives in the team's namespace and impersonates its account.
    let (ok, out) = kubectl(
        &[
            "get",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "production-api",
            "-n",
            &team,
            "-o",
            "jsonpath={.spec.serviceAccountName}",
        ],
        None,
    );
    assert!(
        ok && out.trim() == "flux-apply",
        "per-app Kustomization: {out}"
    );

    // The Environment says that charts are held by RBAC, not by a list.
    s.wait_environment("production", "HelmPolicyEnforced", |e| {
        e.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "HelmPolicyEnforced" && c.status == "True")
        })
    })
    .await;

    // The CI identity reads no Secret, here or in the platform namespace.
    let who = format!("system:serviceaccount:{team}:ci");
    for ns in [team.as_str(), s.ns.as_str()] {
        let (ok, out) = kubectl(&["--as", &who, "-n", ns, "get", "secrets"], None);
        assert!(
            !ok && out.contains("forbidden"),
            "secrets readable in {ns}: {out}"
        );
    }

    // Each escape ends with a named reason, and nothing is committed for it.
    let list_crb = json!({"manifests": [{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "escape"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": team}]}]}]});
    let flux_ks = json!({"manifests": [{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "escape"}, "spec": {"interval": "1m", "path": "./", "prune": false,
        "sourceRef": {"kind": "GitRepository", "name": "gitops", "namespace": s.ns}}}]});
    let rolebinding = json!({"manifests": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "escape"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": team}]}]});
    // A custom resource of a cluster-scoped kind (known from API discovery, not a list).
    let cluster_cr = json!({"manifests": [{"apiVersion": "e2e.tumbler.dev/v1", "kind": "ClusterThing",
        "metadata": {"name": "escape"}}]});
    let escapes = [
        (
            "kube-system",
            json!({"namespace": "kube-system"}),
            "TargetNamespaceNotAllowed",
        ),
        ("list-crb", list_crb, "ClusterScopedRefused"),
        ("flux-ks", flux_ks, "FluxObjectRefused"),
        ("rolebinding", rolebinding, "RBACRefused"),
        ("cluster-cr", cluster_cr, "ClusterScopedRefused"),
    ];
    for (name, spec, _) in &escapes {
        let (ok, out) = as_ci(&team, &release(&s, name, spec.clone()));
        assert!(ok, "{name}: {out}");
    }
    let mut table = vec![];
    for (name, _, reason) in &escapes {
        let rel = wait_reason(&s, &team, name, reason).await;
        table.push(format!(
            "{name}: {reason}: {}",
            cond(&rel, "Ready").unwrap().message
        ));
        assert!(
            rel.status.as_ref().unwrap().commit.is_none(),
            "{name} committed"
        );
    }
    // A chart whose templates hold a ClusterRoleBinding: only Kubernetes can judge it, and
    // helm-controller installs as the team's account, which may not.
    let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: escape-helm\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: ci, namespace: default}]\n";
    let charts = serve_chart_with(&s.ns, "escalate", "0.1.0", &[("crb.yaml", crb)]);
    let helm =
        json!({"helm": {"chart": {"repository": charts, "name": "escalate", "version": "0.1.0"}}});
    let (ok, out) = as_ci(&team, &release(&s, "escalate", helm));
    assert!(ok, "{out}");
    let failed = wait_reason(&s, &team, "escalate", "HelmReleaseFailed").await;
    let message = cond(&failed, "Ready").unwrap().message.clone();
    assert!(message.contains("forbidden"), "{message}");
    table.push(format!(
        "helm chart with a ClusterRoleBinding: HelmReleaseFailed: {message}"
    ));

    // A version that would forge trailers never gets in.
    let (ok, out) = as_ci(
        &team,
        &release(&s, "forged", json!({"version": "1\nTumbler-Release: x/y"})),
    );
    assert!(!ok, "a version with a newline was accepted: {out}");
    // A namespace the Environment does not admit.
    let (ok, out) = as_ci(&outsider, &release(&s, "api", json!({})));
    assert!(ok, "{out}");
    let refused = wait_reason(&s, &outsider, "api", "NotAllowedByEnvironment").await;
    table.push(format!(
        "not admitted: {}",
        cond(&refused, "Ready").unwrap().message
    ));

    // The cluster holds nothing of theirs outside the team's namespace.
    for (kind, ns) in [
        ("deployments", "kube-system"),
        ("rolebindings", team.as_str()),
    ] {
        let (ok, out) = kubectl(
            &[
                "get",
                kind,
                "-n",
                ns,
                "-l",
                "app.kubernetes.io/managed-by=tumbler",
                "-o",
                "name",
            ],
            None,
        );
        assert!(ok && out.trim().is_empty(), "{kind} in {ns}: {out}");
    }
    for crb in ["escape", "escape-helm"] {
        let (ok, out) = kubectl(&["get", "clusterrolebinding", crb], None);
        assert!(!ok, "a ClusterRoleBinding escaped: {out}");
    }

    // Two teams race for one app folder: exactly one owns it.
    let race = |t: String| {
        let doc = release(&s, "shared", json!({}));
        std::thread::spawn(move || as_ci(&t, &doc))
    };
    let (a, b) = (race(team.clone()), race(other.clone()));
    assert!(a.join().unwrap().0 && b.join().unwrap().0);
    let (mut owners, mut refused) = (vec![], vec![]);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while owners.len() + refused.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the race did not settle\n{}",
            s.log_tail(30)
        );
        (owners, refused) = (vec![], vec![]);
        for t in [&team, &other] {
            let Ok(Some(rel)) = in_team(&s, t).get_opt("shared").await else {
                continue;
            };
            if rel.status.as_ref().is_some_and(|st| st.commit.is_some()) {
                owners.push(t.clone());
            } else if ready_is(&rel, "False", "AppConflict") {
                refused.push(t.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(owners.len(), 1, "owners {owners:?}, refused {refused:?}");
    let record = Clone::of(&with_credentials(&url))
        .read("envs/production/shared/.tumbler/release.yaml")
        .unwrap();
    assert!(
        record.contains(&format!("namespace: {}", owners[0])),
        "{record}"
    );
    table.push(format!(
        "race for one folder: {} owns it, {} got AppConflict",
        owners[0], refused[0]
    ));

    // A later Environment writing inside production's folder is refused; the folder stays.
    let clone = Clone::of(&with_credentials(&url));
    let before = clone.head();
    let mut sneaky = environment(
        "sneaky",
        &url,
        json!({"repository": {"path": "envs/production/api", "secretRef": {"name": "creds"}, "insecure": true}}),
    );
    sneaky["metadata"]["labels"] = s.label();
    s.apply(&s.environments(), sneaky).await;
    s.wait_environment("sneaky", "refused as overlapping", |e| {
        e.status.as_ref().is_some_and(|st| {
            st.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.reason == "OverlappingEnvironment")
        })
    })
    .await;
    let mut doc = template_release("web", "sneaky", "web", "1.0.0");
    doc["metadata"]["labels"] = s.label();
    s.apply(&s.releases(), doc).await;
    s.wait_release("web", "refused", |r| {
        ready_is(r, "False", "OverlappingEnvironment")
    })
    .await;
    assert_eq!(
        Clone::of(&with_credentials(&url)).head(),
        before,
        "production's folder was touched"
    );

    eprintln!("escapes:\n  {}", table.join("\n  "));
    // Every Release goes (its folder removed where it owns one) before the namespaces do.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for t in [&team, &other, &outsider] {
        let api = in_team(&s, t);
        let _ = api
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
        while !api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "Releases of {t} not cleaned up\n{}",
                s.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    drop_namespaces(&s, &[&team, &other, &outsider]).await;
    s.finish().await;
}
