//! Releases attached to an Environment of another namespace: target namespace and Flux
//! impersonation (docs/MULTITENANCY.md).

use serde_json::{Value, json};

use super::{env, merge, release, template, yaml};
use crate::api::{Environment, Release};
use crate::render::*;

/// An Environment `production` in the platform's namespace, with a default target namespace
/// that attached Releases must ignore.
fn platform_env(extra: Value) -> Environment {
    let mut e = env(json!({"targetNamespace": "shared"}));
    e.metadata.namespace = Some("platform".into());
    e.metadata.name = Some("production".into());
    let mut spec = serde_json::to_value(&e.spec).unwrap();
    merge(&mut spec, extra);
    e.spec = serde_json::from_value(spec).unwrap();
    e
}

/// Per-app mode, Flux impersonating `flux-apply` in each tenant namespace.
fn impersonating() -> Value {
    json!({
        "flux": {
            "perApp": true,
            "kustomizations": [{"name": "apps", "namespace": "flux-system"}],
            "gitRepository": {"name": "gitops"},
        },
        "releases": {"namespaces": {"from": "All"}, "serviceAccountName": "flux-apply"},
    })
}

/// A Release of `team-a` naming the Environment in `platform`.
fn attached(spec: Value) -> Release {
    let mut rel = release(spec);
    rel.spec.environment = "production".into();
    rel.spec.environment_namespace = Some("platform".into());
    rel
}

#[test]
fn attached_release_defaults_to_its_namespace_and_ignores_target_namespace() {
    let r = render(&attached(template()), &platform_env(json!({}))).unwrap();
    assert_eq!(r.namespace, "team-a");
    assert_eq!(
        yaml(&r, "deployment-api.yaml")["metadata"]["namespace"],
        "team-a"
    );
    // The same Environment still sends its own namespace's Releases to targetNamespace.
    let mut own = release(template());
    own.metadata.namespace = Some("platform".into());
    assert_eq!(
        render(&own, &platform_env(json!({}))).unwrap().namespace,
        "shared"
    );
    // Naming its own namespace is always allowed.
    let mut spec = template();
    spec["namespace"] = json!("team-a");
    assert_eq!(
        render(&attached(spec), &platform_env(json!({})))
            .unwrap()
            .namespace,
        "team-a"
    );
}

#[test]
fn attached_release_into_kube_system_is_refused() {
    let mut spec = template();
    spec["namespace"] = json!("kube-system");
    let err = render(&attached(spec), &platform_env(json!({}))).unwrap_err();
    assert!(
        matches!(err, RenderError::TargetNamespaceNotAllowed { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "TargetNamespaceNotAllowed");
    assert!(err.is_terminal());
    let text = err.to_string();
    for part in [
        "\"kube-system\"",
        "platform/production",
        "spec.releases.targetNamespaces",
        "\"team-a\"",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
    // The Environment's own default target is no exception.
    let mut spec = template();
    spec["namespace"] = json!("shared");
    let err = render(&attached(spec), &platform_env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "TargetNamespaceNotAllowed");
}

#[test]
fn attached_release_may_deploy_where_target_namespaces_allow() {
    let e = platform_env(json!({"releases": {"targetNamespaces": ["team-a-jobs"]}}));
    let mut spec = template();
    spec["namespace"] = json!("team-a-jobs");
    let r = render(&attached(spec), &e).unwrap();
    assert_eq!(r.namespace, "team-a-jobs");
    assert_eq!(
        yaml(&r, "service-api.yaml")["metadata"]["namespace"],
        "team-a-jobs"
    );
}

#[test]
fn impersonated_per_app_kustomization_lives_in_the_release_namespace() {
    let e = platform_env(impersonating());
    let rel = attached(template());
    let r = render(&rel, &e).unwrap();
    assert_eq!(r.env_entry.as_deref(), Some("api/flux-kustomization.yaml"));
    let ks = yaml(&r, PER_APP_FILE);
    assert_eq!(ks["metadata"]["name"], "production-api");
    assert_eq!(ks["metadata"]["namespace"], "team-a");
    assert_eq!(ks["spec"]["serviceAccountName"], "flux-apply");
    assert_eq!(ks["spec"]["targetNamespace"], "team-a");
    assert_eq!(
        ks["spec"]["sourceRef"],
        json!({"kind": "GitRepository", "name": "gitops", "namespace": "flux-system"}),
        "the GitRepository stays where the platform keeps it"
    );
    assert_eq!(
        per_app_kustomization(&e, &rel),
        ("production-api".to_string(), "team-a".to_string())
    );
    assert_eq!(per_app_namespace(&e, Some("team-a")), "team-a");
    assert_eq!(per_app_namespace(&e, None), "flux-system");

    // Without the first Kustomization's namespace, the GitRepository is the Environment's.
    let mut e = e;
    if let Some(f) = e.spec.flux.as_mut() {
        f.kustomizations[0].namespace = None;
    }
    let ks = yaml(&render(&rel, &e).unwrap(), PER_APP_FILE);
    assert_eq!(ks["spec"]["sourceRef"]["namespace"], "platform");
}

#[test]
fn same_namespace_per_app_kustomization_is_unchanged_by_impersonation() {
    let e = platform_env(impersonating());
    let mut own = release(template());
    own.metadata.namespace = Some("platform".into());
    let ks = yaml(&render(&own, &e).unwrap(), PER_APP_FILE);
    assert_eq!(ks["metadata"]["namespace"], "flux-system");
    assert!(ks["spec"]["serviceAccountName"].is_null() && ks["spec"]["targetNamespace"].is_null());
    assert_eq!(per_app_kustomization(&e, &own).1, "flux-system");
}

fn helm() -> Value {
    json!({"helm": {"chart": {"repository": "https://charts.example.com", "name": "onechart", "version": "0.70.0"}}})
}

#[test]
fn impersonated_helm_release_is_pinned_to_the_account_and_namespace() {
    let e = platform_env(impersonating());
    let r = render(&attached(helm()), &e).unwrap();
    let hr = yaml(&r, "helmrelease-api.yaml");
    assert_eq!(hr["metadata"]["namespace"], "team-a");
    assert_eq!(hr["spec"]["serviceAccountName"], "flux-apply");
    assert_eq!(hr["spec"]["targetNamespace"], "team-a");
    assert_eq!(hr["spec"]["storageNamespace"], "team-a");
    // Same-namespace Helm output has none of them.
    let plain = render(&release(helm()), &env(json!({}))).unwrap();
    assert!(yaml(&plain, "helmrelease-api.yaml")["spec"]["serviceAccountName"].is_null());

    // A patch may change the HelmRelease, not what impersonation pins.
    let mut spec = helm();
    spec["patches"] = json!([{"target": {"kind": "HelmRelease"}, "patch": "- op: remove\n  path: /spec/serviceAccountName\n"}]);
    let err = render(&attached(spec), &e).unwrap_err();
    assert_eq!(err.reason(), "InvalidManifest", "{err}");
    assert!(
        err.to_string().contains("HelmRelease/api")
            && err.to_string().contains("serviceAccountName"),
        "{err}"
    );
    let mut spec = helm();
    spec["patches"] =
        json!([{"target": {"kind": "HelmRelease"}, "patch": "spec:\n  timeout: 10m\n"}]);
    assert!(render(&attached(spec), &e).is_ok());

    // Nor point helm-controller at another cluster or another namespace's chart source.
    for (patch, field) in [
        (
            "spec:\n  kubeConfig: {secretRef: {name: prod-admin}}\n",
            "spec.kubeConfig",
        ),
        (
            "spec:\n  chartRef: {kind: OCIRepository, name: c, namespace: platform}\n",
            "spec.chartRef",
        ),
        (
            "spec:\n  chart:\n    spec:\n      sourceRef: {namespace: platform}\n",
            "spec.chart.spec.sourceRef.namespace",
        ),
    ] {
        let mut spec = helm();
        spec["patches"] = json!([{"target": {"kind": "HelmRelease"}, "patch": patch}]);
        let err = render(&attached(spec), &e).unwrap_err();
        assert_eq!(err.reason(), "InvalidManifest", "{err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn service_account_without_per_app_is_an_invalid_environment() {
    let e = platform_env(json!({"releases": {"serviceAccountName": "flux-apply"}}));
    let err = render(&attached(template()), &e).unwrap_err();
    assert!(
        matches!(err, RenderError::InvalidEnvironment { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("serviceAccountName") && err.to_string().contains("perApp"),
        "{err}"
    );
    // The Environment's own Releases are not impersonated, so they still render.
    let mut own = release(template());
    own.metadata.namespace = Some("platform".into());
    assert!(render(&own, &e).is_ok());
}
