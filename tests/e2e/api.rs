//! The CRDs against the real API server: installed and established, the samples accepted,
//! every invalid fixture rejected with a message naming the field (CEL rules included).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;

use crate::harness::*;

fn yaml(path: &std::path::Path) -> (String, serde_json::Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = serde_saphyr::from_str(&text).unwrap();
    (text, doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_are_established_and_the_api_server_validates_like_the_docs_say() {
    let s = Scenario::new("api").await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    for crd in tumbler::api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        let live = crds
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("CRD {name} not installed: {e}"));
        let established = live
            .status
            .and_then(|st| st.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "CRD {name} not established");
        assert_eq!(
            live.spec.versions[0].schema, crd.spec.versions[0].schema,
            "installed CRD {name} differs from crds/: re-apply"
        );
    }

    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let api_for = |doc: &serde_json::Value| {
        let kind = doc["kind"].as_str().unwrap();
        let ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "tumbler.dev",
            "v1alpha1",
            kind,
        ));
        Api::<DynamicObject>::namespaced_with(s.client.clone(), &s.ns, &ar)
    };
    let samples = repo_root().join("config/samples");
    // One object per file; config/samples/multi-tenant/ holds whole setups (several objects
    // per file, played by the tenancy test).
    for path in std::fs::read_dir(samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
    {
        let (_, mut doc) = yaml(&path);
        doc["metadata"]["namespace"] = s.ns.clone().into();
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        api_for(&doc)
            .create(&dry_run, &obj)
            .await
            .unwrap_or_else(|e| panic!("sample {} rejected: {e}", doc["metadata"]["name"]));
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("tests/fixtures/invalid")).unwrap() {
        let path = entry.unwrap().path();
        let (text, mut doc) = yaml(&path);
        let expect = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# expect: ")
            .to_string();
        doc["metadata"]["namespace"] = s.ns.clone().into();
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        match api_for(&doc).create(&dry_run, &obj).await {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(kube::Error::Api(e)) => {
                assert_eq!(e.code, 422, "{}: {e:?}", path.display());
                assert!(
                    e.message.contains(&expect),
                    "{}: message {:?} does not name {expect:?}",
                    path.display(),
                    e.message
                );
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
        checked += 1;
    }
    assert!(checked >= 9);
    s.finish().await;
}

/// Conditions are a list map keyed by `type`: the API server refuses a status with two
/// conditions of one type, and the controller's server-side apply of the status (its own
/// field manager, per condition type) goes on working next to a condition another manager
/// added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_are_one_per_type_and_the_status_apply_merges_per_type() {
    let s = Scenario::new("condmap").await;
    s.repo_and_environment("staging", serde_json::json!({}))
        .await;
    s.release("api", "staging", "1.0.0").await;
    s.wait_release("api", "1.0.0 committed", committed).await;
    let cond = |t: &str| {
        serde_json::json!({"type": t, "status": "True", "reason": "Test", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let twice = serde_json::json!({"status": {"conditions": [cond("Ready"), cond("Ready")]}});
    let (ok, out) = kubectl(
        &[
            "-n",
            &s.ns,
            "patch",
            "release",
            "api",
            "--subresource=status",
            "--type=merge",
            "-p",
            &twice.to_string(),
        ],
        None,
    );
    assert!(!ok && out.contains("Duplicate value"), "{out}");
    // Another manager's condition, applied server-side next to Tumbler's.
    let mine = serde_json::json!({"apiVersion": "tumbler.dev/v1alpha1", "kind": "Release",
        "metadata": {"name": "api", "namespace": s.ns},
        "status": {"conditions": [cond("ExternalCheck")]}});
    let (ok, out) = kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=checker",
            "--subresource=status",
            "-f",
            "-",
        ],
        Some(&mine.to_string()),
    );
    assert!(ok, "{out}");
    s.release("api", "staging", "2.0.0").await;
    let rel = s
        .wait_release("api", "2.0.0 committed", |r| {
            committed(r) && r.spec.version == "2.0.0"
        })
        .await;
    let types: Vec<&str> = rel
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    assert!(
        types.contains(&"ExternalCheck") && types.contains(&"Ready"),
        "{types:?}"
    );
    let mut unique = types.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), types.len(), "{types:?}");
    s.finish().await;
}
