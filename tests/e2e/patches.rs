//! Tumbler's patches are kustomize's: each case of `tests/fixtures/patches/<case>/`
//! (`resources.yaml`, and `patches.yaml` in the form of a Release's `spec.patches`, which is
//! also kustomize's `patches` field) is patched by Tumbler and by the real `kubectl
//! kustomize` on a generated kustomization, and the objects must be equal. Needs no
//! cluster, only `kubectl` on PATH (the e2e environment puts it there).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::repo_root;

fn docs(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .filter(|v| v.is_object())
        .collect()
}

/// Objects in a stable order: kustomize sorts its output by kind.
fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(|o| {
        (
            o["apiVersion"].to_string(),
            o["kind"].to_string(),
            o["metadata"]["name"].to_string(),
        )
    });
    objects
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What `kubectl kustomize` makes of the case.
fn kustomize(case: &Path, patches: &Value) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        case.join("resources.yaml"),
        dir.path().join("resources.yaml"),
    )
    .unwrap();
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["resources.yaml"],
        "patches": patches,
    });
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        serde_json::to_string(&kustomization).unwrap(),
    )
    .unwrap();
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        case.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    docs(&String::from_utf8_lossy(&out.stdout))
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/fixtures/patches"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("patches.yaml").exists())
        .collect();
    cases.sort();
    cases
}

#[test]
fn patches_do_what_kubectl_kustomize_does() {
    if !kubectl_available() {
        eprintln!(
            "SKIPPED patches_do_what_kubectl_kustomize_does: no kubectl on PATH (source .tumbler-dev/env, or run it through make e2e)"
        );
        return;
    }
    let cases = cases();
    assert!(cases.len() >= 10, "{cases:?}");
    let mut failures = vec![];
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let resources = docs(&std::fs::read_to_string(case.join("resources.yaml")).unwrap());
        let patches: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(case.join("patches.yaml")).unwrap())
                .unwrap();
        let typed: Vec<tumbler::api::Patch> = serde_json::from_value(patches.clone())
            .unwrap_or_else(|e| panic!("{name}: patches.yaml: {e}"));
        let mut ours = resources.clone();
        tumbler::render::apply_patches(&mut ours, &typed)
            .unwrap_or_else(|e| panic!("{name}: Tumbler refused the patches: {e}"));
        let ours = sorted(ours);
        let theirs = sorted(kustomize(case, &patches));
        // Every case changes something, so that equality is not a patch that did nothing.
        assert_ne!(
            ours,
            sorted(resources),
            "{name}: the patches changed nothing"
        );
        if ours != theirs {
            failures.push(format!(
                "{name}:\n--- Tumbler\n{}\n--- kubectl kustomize\n{}",
                serde_saphyr::to_string(&ours).unwrap(),
                serde_saphyr::to_string(&theirs).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The selector syntax kustomize refuses is refused by Tumbler too, as a render error
/// (`PatchFailed`) rather than a patch applied to the wrong objects.
#[test]
fn malformed_selectors_are_refused_by_both() {
    if !kubectl_available() {
        eprintln!("SKIPPED malformed_selectors_are_refused_by_both: no kubectl on PATH");
        return;
    }
    let case = repo_root().join("tests/fixtures/patches/label-selectors");
    let resources = docs(&std::fs::read_to_string(case.join("resources.yaml")).unwrap());
    for selector in ["tier in (front", "tier notin front", "tier ~ front"] {
        let patches = json!([{"target": {"labelSelector": selector}, "patch": "data: {x: y}\n"}]);
        let typed: Vec<tumbler::api::Patch> = serde_json::from_value(patches.clone()).unwrap();
        let err = tumbler::render::apply_patches(&mut resources.clone(), &typed)
            .expect_err(selector)
            .to_string();
        assert!(err.contains("labelSelector"), "{selector}: {err}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            case.join("resources.yaml"),
            dir.path().join("resources.yaml"),
        )
        .unwrap();
        let k = json!({"resources": ["resources.yaml"], "patches": patches});
        std::fs::write(dir.path().join("kustomization.yaml"), k.to_string()).unwrap();
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "kustomize accepted {selector:?}");
    }
}
