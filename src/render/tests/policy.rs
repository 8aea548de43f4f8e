//! Policy that cannot be side-stepped: Lists, Flux's kinds, group-qualified allowed kinds,
//! RBAC for attached Releases, cluster scope by discovery, version text.

use serde_json::{Value, json};

use super::{env, release, template, yaml};
use crate::api::Release;
use crate::render::*;

fn manifests(items: Value) -> Release {
    release(json!({ "manifests": items }))
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})
}

fn list(items: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// The Release of `team-a` attached to an Environment of `platform`.
fn attached(rel: Release) -> (Release, crate::api::Environment) {
    let mut e = env(json!({}));
    e.metadata.namespace = Some("platform".into());
    (rel, e)
}

#[test]
fn list_items_become_files() {
    let r = render(
        &manifests(json!([
            list(json!([config_map("one"), config_map("two")])),
            config_map("three")
        ])),
        &env(json!({})),
    )
    .unwrap();
    for name in [
        "configmap-one.yaml",
        "configmap-two.yaml",
        "configmap-three.yaml",
    ] {
        assert_eq!(yaml(&r, name)["metadata"]["namespace"], "staging", "{name}");
    }
    assert!(!r.files.keys().any(|f| f.starts_with("list-")));
    assert_eq!(
        yaml(&r, "kustomization.yaml")["resources"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_list_is_checked_item_by_item() {
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "root"}});
    let err = render(
        &manifests(json!([list(json!([config_map("ok"), binding]))])),
        &env(json!({})),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "ClusterScopedRefused", "{err}");
    assert!(err.to_string().contains("ClusterRoleBinding/root"), "{err}");

    let nested = list(json!([list(json!([config_map("inner")]))]));
    let err = render(&manifests(json!([nested])), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "InvalidManifest", "{err}");
    assert!(
        err.to_string().contains("spec.manifests[0].items[0]"),
        "{err}"
    );

    let typed = json!({"apiVersion": "v1", "kind": "ConfigMapList", "items": [config_map("x")]});
    let err = render(&manifests(json!([typed])), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "InvalidManifest", "{err}");
    assert!(err.to_string().contains("ConfigMapList"), "{err}");

    let no_items = json!({"apiVersion": "v1", "kind": "List"});
    let err = render(&manifests(json!([no_items])), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "InvalidManifest", "{err}");
}

fn flux_objects() -> [Value; 3] {
    [
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "x"}, "spec": {"path": "./", "sourceRef": {"kind": "GitRepository", "name": "x"}}}),
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "x"}, "spec": {"url": "https://example.com/x.git"}}),
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "x"}, "spec": {}}),
    ]
}

#[test]
fn flux_objects_in_manifests_are_refused_unless_allowed() {
    for obj in flux_objects() {
        let rel = manifests(json!([obj.clone()]));
        let err = render(&rel, &env(json!({}))).unwrap_err();
        assert!(
            matches!(err, RenderError::FluxObjectRefused { .. }),
            "{err:?}"
        );
        assert_eq!(err.reason(), "FluxObjectRefused");
        assert!(err.is_terminal());
        let text = err.to_string();
        assert!(
            text.contains(&format!("{}/x", obj["kind"].as_str().unwrap())),
            "{text}"
        );
        assert!(text.contains("allowFluxObjects"), "{text}");
        assert!(render(&rel, &env(json!({"policy": {"allowFluxObjects": true}}))).is_ok());
        // Also inside a List.
        let err = render(&manifests(json!([list(json!([obj]))])), &env(json!({}))).unwrap_err();
        assert_eq!(err.reason(), "FluxObjectRefused");
    }
}

#[test]
fn a_patch_cannot_make_a_flux_object() {
    let mut spec = json!({"manifests": [config_map("x")]});
    spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": "- op: replace\n  path: /apiVersion\n  value: kustomize.toolkit.fluxcd.io/v1\n- op: replace\n  path: /kind\n  value: Kustomization\n"}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "FluxObjectRefused", "{err}");
    // Nor turn Tumbler's own HelmRepository into another Flux kind.
    let mut spec = json!({"helm": {"chart": {"repository": "https://charts.example.com", "name": "c", "version": "1"}}});
    spec["patches"] = json!([{"target": {"kind": "HelmRepository"}, "patch": "- op: replace\n  path: /kind\n  value: GitRepository\n"}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "FluxObjectRefused", "{err}");
}

#[test]
fn allowed_kinds_entries_may_name_the_group() {
    let deployment = manifests(
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}]),
    );
    let with = |kinds: Value| env(json!({"policy": {"allowedKinds": kinds}}));
    assert!(render(&deployment, &with(json!(["Deployment.apps"]))).is_ok());
    assert!(render(&deployment, &with(json!(["Deployment"]))).is_ok());
    let err = render(&deployment, &with(json!(["Deployment.example.com"]))).unwrap_err();
    assert_eq!(err.reason(), "ForbiddenKind");
    assert!(err.to_string().contains("Deployment/d"), "{err}");
    let cm = manifests(json!([config_map("c")]));
    assert!(render(&cm, &with(json!(["ConfigMap."]))).is_ok());
    assert!(render(&cm, &with(json!(["ConfigMap"]))).is_ok());
    assert!(render(&cm, &with(json!(["ConfigMap.apps"]))).is_err());
}

fn role_binding() -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "read-secrets"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "Group", "name": "team-a"}]})
}

#[test]
fn rbac_objects_are_refused_for_attached_releases() {
    let (rel, mut e) = attached(manifests(json!([role_binding()])));
    let err = render(&rel, &e).unwrap_err();
    assert!(matches!(err, RenderError::RbacRefused { .. }), "{err:?}");
    assert_eq!(err.reason(), "RBACRefused");
    assert!(err.is_terminal());
    let text = err.to_string();
    for part in [
        "RoleBinding/read-secrets",
        "Secrets",
        "allowRBAC",
        "\"team-a\"",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
    e.spec.policy.allow_rbac = true;
    assert_eq!(render(&rel, &e).unwrap().namespace, "team-a");
    // Same namespace: allowed, as before.
    assert!(render(&manifests(json!([role_binding()])), &env(json!({}))).is_ok());
}

#[test]
fn discovery_scopes_decide_cluster_scope() {
    let issuer = manifests(
        json!([{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "le"}, "spec": {}}]),
    );
    // Without discovery, an unknown kind counts as namespaced (the built-in list's fallback).
    let r = render(&issuer, &env(json!({}))).unwrap();
    assert_eq!(
        yaml(&r, "clusterissuer-le.yaml")["metadata"]["namespace"],
        "staging"
    );

    let scopes = Scopes::from_lists(
        [("cert-manager.io".to_string(), "ClusterIssuer".to_string())],
        [("cert-manager.io".to_string(), "Issuer".to_string())],
    );
    assert_eq!(
        scopes.cluster_scoped("cert-manager.io", "ClusterIssuer"),
        Some(true)
    );
    assert_eq!(
        scopes.cluster_scoped("cert-manager.io", "Issuer"),
        Some(false)
    );
    assert_eq!(scopes.cluster_scoped("", "Namespace"), None);
    let err = render_with(&issuer, &env(json!({})), Some(&scopes)).unwrap_err();
    assert_eq!(err.reason(), "ClusterScopedRefused", "{err}");
    assert!(err.to_string().contains("ClusterIssuer/le"), "{err}");
    let allowed = env(json!({"policy": {"allowClusterScoped": true}}));
    let r = render_with(&issuer, &allowed, Some(&scopes)).unwrap();
    assert!(yaml(&r, "clusterissuer-le.yaml")["metadata"]["namespace"].is_null());
    // Kinds discovery does not list still fall back to the built-in list.
    let ns =
        manifests(json!([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}]));
    assert_eq!(
        render_with(&ns, &env(json!({})), Some(&scopes))
            .unwrap_err()
            .reason(),
        "ClusterScopedRefused"
    );
    // The same output as render when discovery agrees with the built-in list.
    assert_eq!(
        render_with(&release(template()), &env(json!({})), Some(&scopes)).unwrap(),
        render(&release(template()), &env(json!({}))).unwrap()
    );
}

#[test]
fn version_with_control_characters_is_refused() {
    for version in ["1.0\nSigned-off-by: someone", "1.0\r", "1\0", "1\t2"] {
        let mut rel = release(template());
        rel.spec.version = version.into();
        let err = render(&rel, &env(json!({}))).unwrap_err();
        assert!(
            matches!(&err, RenderError::InvalidName { field, .. } if field == "version"),
            "{version:?}: {err:?}"
        );
    }
    let mut rel = release(template());
    rel.spec.version = "1.4.2 (hotfix: ünïcode)".into();
    assert!(render(&rel, &env(json!({}))).is_ok());
}
