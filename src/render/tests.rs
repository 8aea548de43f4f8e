use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::api::{Environment, Release};

fn env(extra: Value) -> Environment {
    let mut doc = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": "staging", "namespace": "team-a"},
        "spec": {"repository": {"url": "https://git.example.com/g.git", "branch": "main", "path": "envs/staging"}, "targetNamespace": "staging"}
    });
    crate::render::tests::merge(&mut doc["spec"], extra);
    serde_json::from_value(doc).unwrap()
}

fn merge(doc: &mut Value, patch: Value) {
    match (doc, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn release(spec: Value) -> Release {
    let mut doc = json!({
        "apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": "api-staging", "namespace": "team-a", "uid": "x", "resourceVersion": "9"},
        "spec": {"environment": "staging", "app": "api", "version": "1.4.2"}
    });
    merge(&mut doc["spec"], spec);
    serde_json::from_value(doc).unwrap()
}

fn template() -> Value {
    json!({"template": {
        "image": {"repository": "ghcr.io/acme/api", "tag": "1.4.2"},
        "replicas": 2,
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": {"LOG_LEVEL": "info"},
        "envFrom": [{"secretRef": {"name": "api-secrets"}}],
        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
        "probes": {"readiness": {"httpGet": {"path": "/healthz", "port": "http"}}},
        "ingress": {"host": "api.example.com", "tls": true, "className": "nginx"},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5},
        "disruptionBudget": {"minAvailable": 1},
        "serviceAccount": true
    }})
}

fn yaml(r: &Rendered, file: &str) -> Value {
    let bytes = r.files.get(file).unwrap_or_else(|| {
        panic!(
            "{file} missing; have {:?}",
            r.files.keys().collect::<Vec<_>>()
        )
    });
    serde_saphyr::from_slice(bytes).unwrap()
}

#[test]
fn template_renders_deployment_service_and_env_configmap() {
    let r = render(&release(template()), &env(json!({}))).unwrap();
    assert_eq!(r.app_dir, "envs/staging/api");
    assert_eq!(r.namespace, "staging");
    let names: Vec<&str> = r.files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            ".tumbler/release.yaml",
            "configmap-api-env.yaml",
            "deployment-api.yaml",
            "horizontalpodautoscaler-api.yaml",
            "ingress-api.yaml",
            "kustomization.yaml",
            "poddisruptionbudget-api.yaml",
            "service-api.yaml",
            "serviceaccount-api.yaml"
        ]
    );
    let d = yaml(&r, "deployment-api.yaml");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["metadata"]["namespace"], "staging");
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "tumbler"
    );
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/version"],
        "1.4.2"
    );
    assert!(d["spec"]["replicas"].is_null(), "the HPA owns replicas");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/acme/api:1.4.2");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "api-env");
    assert_eq!(c["envFrom"][1]["secretRef"]["name"], "api-secrets");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(
        d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["tumbler.dev/env-checksum"].is_string()
    );
    assert_eq!(d["spec"]["template"]["spec"]["serviceAccountName"], "api");
    let s = yaml(&r, "service-api.yaml");
    assert_eq!(s["spec"]["ports"][0]["port"], 80);
    assert_eq!(s["spec"]["ports"][0]["targetPort"], "http");
    let i = yaml(&r, "ingress-api.yaml");
    assert_eq!(i["spec"]["tls"][0]["secretName"], "api-tls");
    assert_eq!(
        i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"],
        80
    );
    let cm = yaml(&r, "configmap-api-env.yaml");
    assert_eq!(cm["data"]["LOG_LEVEL"], "info");
    let k = yaml(&r, "kustomization.yaml");
    assert_eq!(k["resources"].as_array().unwrap().len(), 7);
    assert!(
        !k["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with(".tumbler"))
    );
    let rec = yaml(&r, ".tumbler/release.yaml");
    assert_eq!(
        rec["metadata"],
        json!({"name": "api-staging", "namespace": "team-a"}),
        "no uid or resourceVersion"
    );
    assert_eq!(rec["spec"]["version"], "1.4.2");
}

#[test]
fn yaml_starts_with_api_version_kind_metadata_and_has_no_nulls() {
    let r = render(&release(template()), &env(json!({}))).unwrap();
    for (name, bytes) in &r.files {
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            !text.contains(": null") && !text.contains(": ~"),
            "{name} has nulls:\n{text}"
        );
        if name.ends_with(".yaml") && name != "kustomization.yaml" && !name.starts_with(".tumbler")
        {
            assert!(text.starts_with("apiVersion:"), "{name}:\n{text}");
        }
    }
}

#[test]
fn render_is_byte_for_byte_deterministic() {
    let a = render(&release(template()), &env(json!({}))).unwrap();
    let b = render(&release(template()), &env(json!({}))).unwrap();
    assert_eq!(a, b);
    let mut changed = template();
    changed["template"]["env"]["LOG_LEVEL"] = json!("debug");
    let c = render(&release(changed), &env(json!({}))).unwrap();
    assert_ne!(a.digest, c.digest);
    assert_ne!(
        yaml(&a, "deployment-api.yaml"),
        yaml(&c, "deployment-api.yaml"),
        "env change rolls the pods"
    );
}

#[test]
fn helm_source_renders_helmrelease_and_repository() {
    let r = render(
        &release(json!({"helm": {"chart": {"repository": "https://charts.example.com", "name": "onechart", "version": "0.70.0"}, "values": {"image": {"tag": "1"}}}})),
        &env(json!({})),
    )
    .unwrap();
    let hr = yaml(&r, "helmrelease-api.yaml");
    assert_eq!(hr["apiVersion"], "helm.toolkit.fluxcd.io/v2");
    assert_eq!(hr["spec"]["chart"]["spec"]["chart"], "onechart");
    assert_eq!(hr["spec"]["chart"]["spec"]["sourceRef"]["name"], "api");
    assert_eq!(hr["spec"]["values"]["image"]["tag"], "1");
    let repo = yaml(&r, "helmrepository-api.yaml");
    assert_eq!(repo["spec"]["url"], "https://charts.example.com");
    assert!(repo["spec"]["type"].is_null());
    let oci = render(&release(json!({"helm": {"chart": {"repository": "oci://ghcr.io/acme/charts", "name": "x", "version": "1"}}})), &env(json!({}))).unwrap();
    assert_eq!(yaml(&oci, "helmrepository-api.yaml")["spec"]["type"], "oci");
}

#[test]
fn manifests_get_the_target_namespace_and_lose_server_fields() {
    let r = render(
        &release(json!({"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "uid": "u", "resourceVersion": "1"}, "data": {"a": "b"}, "status": {}}]})),
        &env(json!({})),
    )
    .unwrap();
    let cm = yaml(&r, "configmap-settings.yaml");
    assert_eq!(cm["metadata"]["namespace"], "staging");
    assert!(cm["metadata"]["uid"].is_null() && cm["status"].is_null());
}

#[test]
fn manifest_without_name_is_refused_naming_its_index() {
    let err = render(&release(json!({"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}}, {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}]})), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "InvalidManifest");
    assert!(err.to_string().contains("spec.manifests[1]"), "{err}");
}

#[test]
fn manifest_in_another_namespace_is_refused() {
    let err = render(&release(json!({"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}}]})), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "WrongNamespace");
    assert!(
        err.to_string().contains("ConfigMap/x") && err.to_string().contains("kube-system"),
        "{err}"
    );
}

#[test]
fn cluster_scoped_kind_is_refused_with_its_name() {
    let rel = release(
        json!({"manifests": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "god"}}]}),
    );
    let err = render(&rel, &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "ClusterScopedRefused");
    assert!(err.to_string().contains("ClusterRole/god"), "{err}");
    let ok = render(&rel, &env(json!({"policy": {"allowClusterScoped": true}}))).unwrap();
    assert!(yaml(&ok, "clusterrole-god.yaml")["metadata"]["namespace"].is_null());
}

#[test]
fn kinds_outside_the_allow_list_are_refused_including_the_template_ones() {
    let err = render(
        &release(template()),
        &env(json!({"policy": {"allowedKinds": ["Deployment", "Service"]}})),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "ForbiddenKind");
    assert!(err.to_string().contains("Deployment, Service"), "{err}");
    let ok = json!({"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}]});
    assert!(
        render(
            &release(ok.clone()),
            &env(json!({"policy": {"allowedKinds": ["Deployment.apps"]}}))
        )
        .is_ok()
    );
    assert!(
        render(
            &release(ok),
            &env(json!({"policy": {"allowedKinds": ["Deployment.example.com"]}}))
        )
        .is_err()
    );
}

#[test]
fn bad_names_and_paths_are_refused() {
    let mut rel = release(template());
    rel.spec.app = "Bad_Name".into();
    assert_eq!(
        render(&rel, &env(json!({}))).unwrap_err().reason(),
        "InvalidName"
    );
    for path in ["../x", "/abs", "a//b", "a/./b"] {
        let e = env(json!({"repository": {"path": path}}));
        assert_eq!(
            render(&release(template()), &e).unwrap_err().reason(),
            "InvalidPath",
            "{path}"
        );
    }
}

#[test]
fn strategic_merge_patch_merges_containers_by_name() {
    let mut spec = template();
    spec["patches"] = json!([{"patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        env:\n        - name: EXTRA\n          value: \"1\"\n      - name: sidecar\n        image: busybox:1\n"}]);
    let r = render(&release(spec), &env(json!({}))).unwrap();
    let d = yaml(&r, "deployment-api.yaml");
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(
        containers[0]["image"], "ghcr.io/acme/api:1.4.2",
        "merged, not replaced"
    );
    assert_eq!(containers[0]["env"][0]["name"], "EXTRA");
    assert_eq!(containers[1]["name"], "sidecar");
}

#[test]
fn strategic_merge_null_and_delete_directives_remove() {
    let mut spec = template();
    spec["patches"] = json!([{"target": {"kind": "Deployment"}, "patch": "spec:\n  template:\n    spec:\n      volumes:\n      - name: tmp\n        $patch: delete\n      securityContext: null\n"}]);
    let r = render(&release(spec), &env(json!({}))).unwrap();
    let pod = &yaml(&r, "deployment-api.yaml")["spec"]["template"]["spec"];
    assert!(pod["securityContext"].is_null());
    assert!(pod["volumes"].as_array().unwrap().is_empty());
}

#[test]
fn json6902_patch_applies_to_targets() {
    let mut spec = template();
    spec["patches"] = json!([{"target": {"kind": "Deployment", "name": "api"}, "patch": "- op: add\n  path: /metadata/annotations/team\n  value: a\n"}]);
    let r = render(&release(spec), &env(json!({}))).unwrap();
    assert_eq!(
        yaml(&r, "deployment-api.yaml")["metadata"]["annotations"]["team"],
        "a"
    );
}

#[test]
fn json6902_patch_that_does_not_apply_fails() {
    let mut spec = template();
    spec["patches"] = json!([{"target": {"kind": "Deployment"}, "patch": "- op: replace\n  path: /spec/does/not/exist\n  value: 1\n"}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "PatchFailed");
    assert!(
        err.to_string().contains("spec.patches[0]") && err.to_string().contains("Deployment/api"),
        "{err}"
    );
    let mut spec = template();
    spec["patches"] = json!([{"target": {"kind": "StatefulSet"}, "patch": "- op: add\n  path: /x\n  value: 1\n"}]);
    assert!(
        render(&release(spec), &env(json!({})))
            .unwrap_err()
            .to_string()
            .contains("matches no rendered object")
    );
}

#[test]
fn patch_cannot_move_an_object_out_of_the_namespace() {
    let mut spec = template();
    spec["patches"] = json!([{"target": {"kind": "Service"}, "patch": "- op: replace\n  path: /metadata/namespace\n  value: kube-system\n"}]);
    assert_eq!(
        render(&release(spec), &env(json!({})))
            .unwrap_err()
            .reason(),
        "WrongNamespace"
    );
}

#[test]
fn digest_covers_paths_and_bytes() {
    let a = BTreeMap::from([("a".to_string(), b"x".to_vec())]);
    let b = BTreeMap::from([("b".to_string(), b"x".to_vec())]);
    assert_ne!(digest(&a), digest(&b));
    assert!(digest(&a).starts_with("sha256:"));
}

#[test]
fn label_values_are_sanitised() {
    assert_eq!(label_value("1.4.2").as_deref(), Some("1.4.2"));
    assert_eq!(label_value("v1 (beta)").as_deref(), Some("v1__beta"));
    assert_eq!(label_value("---").as_deref(), None);
}

#[test]
fn per_app_environment_without_git_repository_is_an_invalid_environment() {
    let err = render(
        &release(template()),
        &env(json!({"flux": {"perApp": true, "kustomizations": [{"name": "apps", "namespace": "flux-system"}]}})),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidEnvironment");
    assert!(err.is_terminal());
    assert!(
        err.to_string().contains("spec.flux.gitRepository") && err.to_string().contains("perApp"),
        "{err}"
    );
    assert!(!RenderError::Yaml("x".into()).is_terminal());
}

fn config_maps(count: usize, data: Value) -> Value {
    let items: Vec<Value> = (0..count)
        .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": data}))
        .collect();
    json!({ "manifests": items })
}

/// `levels` objects nested inside each other, the innermost holding a string.
fn nested(levels: usize) -> Value {
    let mut v = json!("deep");
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

fn assert_too_large(err: &RenderError, mentions: &[&str]) {
    assert_eq!(err.reason(), "RenderTooLarge", "{err}");
    assert!(err.is_terminal());
    let text = err.to_string();
    assert!(
        text.contains("split the app into several Releases"),
        "{text}"
    );
    for m in mentions {
        assert!(text.contains(m), "{m:?} not in {text}");
    }
}

#[test]
fn manifests_over_the_size_limit_are_refused() {
    let mib = "x".repeat(1024 * 1024);
    let err = render(
        &release(config_maps(5, json!({ "blob": mib }))),
        &env(json!({})),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::TooLarge { .. }));
    assert_too_large(&err, &["the Release's spec", "4194304 bytes (4 MiB)"]);
}

#[test]
fn a_release_of_a_mebibyte_still_renders() {
    let r = render(
        &release(config_maps(1, json!({ "blob": "x".repeat(1024 * 1024) }))),
        &env(json!({})),
    )
    .unwrap();
    let total: usize = r.files.values().map(Vec::len).sum();
    assert!(
        total > 2 * 1024 * 1024 && total <= MAX_RENDERED_BYTES,
        "the object and the Release record: {total}"
    );
}

#[test]
fn more_than_max_objects_are_refused() {
    let err = render(
        &release(config_maps(MAX_OBJECTS + 1, json!({"a": "b"}))),
        &env(json!({})),
    )
    .unwrap_err();
    assert_too_large(&err, &["1001 objects", "1000 objects per Release"]);
    let r = render(
        &release(config_maps(MAX_OBJECTS, json!({"a": "b"}))),
        &env(json!({})),
    )
    .unwrap();
    assert_eq!(r.files.len(), MAX_OBJECTS + 2);
}

#[test]
fn a_patch_targeting_every_object_is_refused_before_it_is_applied() {
    // 1,000 small objects and one 8 KiB patch for all of them: 8 MB, estimated, never built.
    let mut spec = config_maps(MAX_OBJECTS, json!({"a": "b"}));
    spec["patches"] = json!([{
        "target": {"kind": "ConfigMap"},
        "patch": format!("data:\n  big: {}\n", "x".repeat(8 * 1024)),
    }]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_too_large(
        &err,
        &[
            "spec.patches[0]",
            "merged into each of the 1000 objects it targets",
        ],
    );
}

#[test]
fn json6902_copies_that_double_an_object_are_refused_as_they_grow() {
    // Each copy of /data into itself doubles the object: 40 of them would make 2^40 × 64 KiB.
    let mut spec = config_maps(1, json!({ "a": "x".repeat(64 * 1024) }));
    let ops: String = (0..40)
        .map(|i| format!("- op: copy\n  from: /data\n  path: /data/c{i}\n"))
        .collect();
    spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": ops}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_too_large(
        &err,
        &["spec.patches[0]", "a copy from /data", "ConfigMap/cm-0"],
    );
}

#[test]
fn a_yaml_alias_bomb_in_a_patch_is_refused() {
    // "Billion laughs": 9 levels of 9 aliases each, 9^9 strings once expanded.
    let mut bomb = String::from("data:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("  {name}: &{name} [{refs}]\n"));
    }
    let mut spec = config_maps(1, json!({"a": "b"}));
    spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": bomb}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "PatchFailed", "{err}");
    assert!(
        err.to_string().contains("spec.patches[0]")
            && err
                .to_string()
                .contains("anchors and aliases expand too much"),
        "{err}"
    );

    // Few aliases of one big string: refused by size once the expansion passes the limit.
    let big = format!(
        "data:\n  a: &a \"{}\"\n  b: [{}]\n",
        "x".repeat(64 * 1024),
        vec!["*a"; 70].join(", ")
    );
    let mut spec = config_maps(1, json!({"a": "b"}));
    spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": big}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_too_large(&err, &["spec.patches[0]", "aliases expanded"]);
}

#[test]
fn objects_nested_deeper_than_the_limit_are_refused() {
    assert!(!limits::deeper_than(&nested(MAX_DEPTH), MAX_DEPTH));
    assert!(limits::deeper_than(&nested(MAX_DEPTH + 1), MAX_DEPTH));

    let deep = json!({"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "data": nested(200)}]});
    let err = render(&release(deep), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "InvalidManifest");
    assert!(
        err.to_string().contains("spec.manifests[0]")
            && err.to_string().contains(&format!("{MAX_DEPTH} levels")),
        "{err}"
    );

    let helm = json!({"helm": {"chart": {"repository": "https://charts.example.com", "name": "c", "version": "1"}, "values": nested(200)}});
    let err = render(&release(helm), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "InvalidValues", "{err}");

    // YAML patches are read at most 64 levels deep (the parser recursion is costly), and the
    // patched object must stay within the limit.
    for (depth, ok) in [(MAX_DEPTH - 2, true), (200, false)] {
        let yaml: String = (0..depth - 1)
            .map(|i| format!("{}a:\n", "  ".repeat(i)))
            .chain([format!("{}a: 1\n", "  ".repeat(depth - 1))])
            .collect();
        let mut spec = config_maps(1, json!({"a": "b"}));
        spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": yaml}]);
        let result = render(&release(spec), &env(json!({})));
        if ok {
            result.unwrap();
        } else {
            let err = result.unwrap_err();
            assert_eq!(err.reason(), "PatchFailed", "{err}");
            assert!(
                err.to_string().contains("nested deeper than 64 levels"),
                "{err}"
            );
        }
    }

    let flow = format!("data: {}{}\n", "[".repeat(200), "]".repeat(200));
    let mut spec = config_maps(1, json!({"a": "b"}));
    spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": flow}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "PatchFailed", "{err}");
    assert!(err.to_string().contains("deeper than 64 levels"), "{err}");

    // JSON6902 operations can nest an object deeper than either they or the object do.
    let mut spec = config_maps(1, json!({"a": "b"}));
    let value = serde_json::to_string(&nested(60)).unwrap();
    let inner = "/a".repeat(59);
    spec["patches"] = json!([{"target": {"kind": "ConfigMap"}, "patch": format!(
        "- op: add\n  path: /data/deep\n  value: {value}\n- op: add\n  path: /data/deep{inner}/x\n  value: {value}\n"
    )}]);
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_eq!(err.reason(), "PatchFailed", "{err}");
    assert!(
        err.to_string().contains("ConfigMap/cm-0")
            && err.to_string().contains(&format!("{MAX_DEPTH} levels")),
        "{err}"
    );
}

#[test]
fn objects_nested_up_to_the_limit_render() {
    // apiVersion/kind/metadata at level 1, data at 2, then the rest up to the limit.
    let spec = json!({"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "data": nested(MAX_DEPTH - 1)}]});
    let r = render(&release(spec), &env(json!({}))).unwrap();
    // The innermost object, at the limit, is indented one time less (read back as text: serde-saphyr
    // reads 64 levels by default, and more costs more stack than a test thread has).
    let text = std::str::from_utf8(&r.files["configmap-deep.yaml"]).unwrap();
    let innermost = format!("\n{}a: deep\n", "  ".repeat(MAX_DEPTH - 1));
    assert!(text.contains(&innermost), "{text}");
}

#[test]
fn yaml_indentation_counts_against_the_limit() {
    // Small as JSON, but each line of a multi-line string 58 levels down is indented 116
    // spaces in YAML.
    let mut v = json!("x\n".repeat(40_000));
    for _ in 0..(MAX_DEPTH - 2) {
        v = json!({ "a": v });
    }
    let spec = json!({"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wide"}, "data": v}]});
    let err = render(&release(spec), &env(json!({}))).unwrap_err();
    assert_too_large(&err, &["the rendered app folder", "configmap-wide.yaml"]);
}

mod policy;
mod tenancy;
