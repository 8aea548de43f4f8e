//! The krew plugin manifest (`plugins/krew/tumbler.yaml`) has what krew needs: the plugin's
//! name, a version matching the crate's, and for linux and darwin on amd64 and arm64 an
//! archive URI, a sha256 (a placeholder until the release job fills it in) and the binary
//! `kubectl-tumbler` that the archive's files provide.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn manifest() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/krew/tumbler.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.pointer(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{field} missing or not a string in {v}"))
}

#[test]
fn krew_manifest_names_the_plugin_and_its_version() {
    let m = manifest();
    assert_eq!(
        text(&m, "/apiVersion"),
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(text(&m, "/kind"), "Plugin");
    // krew wants the file named after the plugin, and the plugin named as kubectl runs it.
    assert_eq!(text(&m, "/metadata/name"), "tumbler");
    assert_eq!(
        text(&m, "/spec/version"),
        format!("v{}", env!("CARGO_PKG_VERSION")),
        "the manifest's version is the crate's"
    );
    assert!(!text(&m, "/spec/shortDescription").is_empty());
    assert!(text(&m, "/spec/homepage").starts_with("https://"));
}

#[test]
fn krew_manifest_has_every_platform_with_uri_sha256_and_the_plugin_binary() {
    let m = manifest();
    let version = text(&m, "/spec/version").to_string();
    let platforms = m
        .pointer("/spec/platforms")
        .and_then(Value::as_array)
        .expect("spec.platforms");
    let mut seen = BTreeSet::new();
    for p in platforms {
        let os = text(p, "/selector/matchLabels/os");
        let arch = text(p, "/selector/matchLabels/arch");
        assert!(
            seen.insert((os.to_string(), arch.to_string())),
            "{os}/{arch} twice"
        );
        let uri = text(p, "/uri");
        assert!(
            uri.starts_with("https://") && uri.ends_with(".tar.gz") && uri.contains(&version),
            "{os}/{arch}: uri {uri}"
        );
        let sha = text(p, "/sha256");
        assert!(
            sha.len() == 64
                && sha
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{os}/{arch}: sha256 {sha:?} is not 64 lowercase hex digits"
        );
        assert_eq!(text(p, "/bin"), "kubectl-tumbler", "{os}/{arch}");
        let files = p
            .pointer("/files")
            .and_then(Value::as_array)
            .expect("files");
        assert!(
            files.iter().any(|f| text(f, "/to") == "kubectl-tumbler"),
            "{os}/{arch}: no file is installed as the bin"
        );
    }
    let want: BTreeSet<(String, String)> = ["linux", "darwin"]
        .iter()
        .flat_map(|os| ["amd64", "arm64"].map(|arch| (os.to_string(), arch.to_string())))
        .collect();
    assert_eq!(seen, want);
}
